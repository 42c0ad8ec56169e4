"""/metrics and the dashboard under a real gunicorn with two workers, DEBUG off."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_operator_gunicorn import Server, start_server, stop

REQUESTS = 40


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("metrics"), "-w", "2")
    yield running
    stop(running)


def backends_requests(server: Server) -> float:
    """What one scrape (answered by whichever worker takes it) says of GET /api/v2/backends."""
    answer = server.get("/metrics")
    assert answer.status == 200, answer
    for family in text_string_to_metric_families(answer.body.decode()):
        for sample in family.samples:
            if sample.name == "qlued_http_requests_total" and sample.labels == {
                "endpoint": "/api/v2/backends",
                "method": "GET",
                "status": "200",
            }:
                return sample.value
    return 0.0


def test_every_scrape_sums_the_requests_of_both_workers(two_workers):
    # The first connection in the accept queue goes to a worker, which then waits for the
    # end of its request and takes no other: the other worker answers the rest.
    with socket.create_connection(("127.0.0.1", two_workers.port), timeout=10) as held:
        held.sendall(b"GET /api/v2/backends HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(REQUESTS - 1):
            assert two_workers.get("/api/v2/backends").status == 200
        held.sendall(b"Connection: close\r\n\r\n")
        assert held.recv(64).startswith(b"HTTP/1.1 200")

    served_by = {path.name for path in (two_workers.home / "data" / "metrics").glob("counter_*")}
    assert len(served_by) == 2, served_by  # both workers answered some of them
    assert {backends_requests(two_workers) for _ in range(10)} == {REQUESTS}


def test_the_dashboard_and_its_stylesheet_are_served_with_debug_off(two_workers):
    login = two_workers.get("/dashboard/login/")
    assert login.status == 200, login
    stylesheet = re.search(rb'href="(/static/dashboard/dashboard\.[0-9a-f]+\.css)"', login.body)
    assert stylesheet is not None, login.body[:500]  # collectstatic's hashed name
    css = two_workers.get(stylesheet.group(1).decode())
    assert (css.status, css.headers["content-type"]) == (200, 'text/css; charset="utf-8"')
