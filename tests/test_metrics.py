"""`GET /metrics` (issue 16): what it counts, what it reads at scrape time, who may scrape."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import ip_network

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from storage_providers.schemas import utcnow
from tests.jobs import BACKEND, JobsApi, run_to_done, run_to_error

SECRET = "scraper-secret"


@pytest.fixture
def api(storage, token) -> JobsApi:  # type: ignore[no-untyped-def]
    return JobsApi(Client(), token)


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, by name and sorted labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def requests_of(samples: dict, endpoint: str, status: str = "200", method: str = "GET") -> float:
    labels = (("endpoint", endpoint), ("method", method), ("status", status))
    return samples.get(("qlued_http_requests_total", labels), 0.0)


def of_backend(samples: dict, name: str, backend: str = BACKEND) -> float | None:
    return samples.get((name, (("backend", backend),)))


def test_requests_are_counted_per_endpoint_method_and_status(client, storage):
    before = scrape(client)
    for _ in range(3):
        client.get("/api/v2/backends")
    client.get(f"/api/v2/{BACKEND}/get_config")
    client.get("/api/v2/nope_nope_simulator/get_config")
    client.post("/api/v2/backends")
    after = scrape(client)

    def grew(endpoint: str, status: str = "200", method: str = "GET") -> float:
        return requests_of(after, endpoint, status, method) - requests_of(
            before, endpoint, status, method
        )

    assert grew("/api/v2/backends") == 3
    assert grew("/api/v2/<backend>/get_config") == 1
    assert grew("/api/v2/<backend>/get_config", "404") == 1
    assert grew("/api/v2/backends", "405", "POST") == 1
    assert grew("/metrics") == 1  # the first scrape


def test_latency_is_a_histogram_per_endpoint(client, storage):
    client.get("/api/v2/backends")
    samples = scrape(client)
    labels = (("endpoint", "/api/v2/backends"), ("method", "GET"), ("status", "200"))
    count = samples[("qlued_http_request_duration_seconds_count", labels)]
    bucket = tuple(sorted((*labels, ("le", "+Inf"))))
    infinite = samples[("qlued_http_request_duration_seconds_bucket", bucket)]
    assert count >= 1 and infinite == count
    assert samples[("qlued_http_request_duration_seconds_sum", labels)] > 0


def test_jobs_are_counted_from_the_ledger_brought_up_to_date(client, api, storage):
    ids = [api.post_id() for _ in range(4)]
    run_to_done(storage)
    run_to_error(storage, "broken")
    api.cancel(ids[2])
    # nobody asked the jobs API since the spooler moved: the scrape learns it itself
    samples = scrape(client)

    assert of_backend(samples, "qlued_jobs_submitted_total") == 4
    assert of_backend(samples, "qlued_jobs_done_total") == 1
    assert of_backend(samples, "qlued_jobs_failed_total") == 1
    assert of_backend(samples, "qlued_jobs_cancelled_total") == 1
    queued = (("backend", BACKEND), ("status", "QUEUED"))
    assert samples[("qlued_jobs_open", queued)] == 1


def test_queue_depth_and_the_spoolers_last_look_are_read_from_storage(client, api, storage):
    api.post_id()
    api.post_id()
    config = storage.get_config("fermions")
    looked = utcnow() - timedelta(seconds=40)
    storage.upload_config("fermions", {**config, "last_queue_check": looked.isoformat()})
    samples = scrape(client)

    assert of_backend(samples, "qlued_backend_queue_depth") == 2
    assert 40 <= of_backend(samples, "qlued_backend_seconds_since_queue_check") < 100
    assert of_backend(samples, "qlued_backend_operational") == 1


def test_a_backend_never_looked_at_has_no_age_and_is_not_operational(client, storage):
    samples = scrape(client)
    assert of_backend(samples, "qlued_backend_seconds_since_queue_check") is None
    assert of_backend(samples, "qlued_backend_operational") == 0


def test_an_address_not_allowed_is_refused(client, db, settings):
    settings.METRICS_ALLOWED_NETWORKS = [ip_network("10.0.0.0/8")]
    response = client.get("/metrics")
    assert (response.status_code, response.content) == (403, b"Forbidden.\n")
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


@pytest.mark.parametrize(("forwarded", "status"), [("10.1.2.3", 200), ("203.0.113.9", 403)])
def test_behind_a_trusted_proxy_the_forwarded_client_is_checked(
    client, db, settings, forwarded, status
):
    settings.TRUSTED_PROXIES = [ip_network("127.0.0.1")]
    settings.METRICS_ALLOWED_NETWORKS = [ip_network("10.0.0.0/8")]
    response = client.get("/metrics", headers={"X-Forwarded-For": forwarded})
    assert response.status_code == status


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer wrong", 401), (f"Basic {SECRET}", 401), (f"Bearer {SECRET}", 200)],
)
def test_with_a_token_set_a_scraper_elsewhere_presents_it(client, db, settings, header, status):
    settings.METRICS_TOKEN = SECRET
    settings.METRICS_ALLOWED_NETWORKS = []
    headers = {"Authorization": header} if header else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_metrics_takes_only_get(client, db):
    assert client.post("/metrics").status_code == 405
