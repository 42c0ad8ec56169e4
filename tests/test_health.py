"""`/healthz` and `/readyz`: what a load balancer or an orchestrator reads (issue 13)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.mongo import PASSWORD
from tests.test_operator_gunicorn import GUNICORN, LISTENING, ROOT, bare_env


def test_healthz_is_ok_without_touching_the_database(client):
    # no django_db mark: any query would fail this test
    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_with_no_provider_is_ready(client, db):
    response = client.get("/readyz")

    assert (response.status_code, response.json()) == (
        200,
        {"status": "ready", "database": "ok", "providers": {}},
    )


def test_readyz_reports_each_provider_and_stays_ready_when_one_is_down(
    client, storage, mongo, user, settings
):
    from backends.models import StorageProviderDb

    settings.MONGODB_SERVER_SELECTION_TIMEOUT = 0.5
    StorageProviderDb.objects.create(
        name="mongolab", storage_type="mongodb", owner=user, login=mongo.login()
    )
    StorageProviderDb.objects.create(
        name="off", storage_type="local", owner=user, login={"base_path": "/x"}, is_active=False
    )
    assert client.get("/readyz").json()["providers"]["mongolab"]["reachable"] is True
    mongo.stop()

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "ok",
        "providers": {
            "alqor": {"type": "local", "reachable": True},
            "mongolab": {"type": "mongodb", "reachable": False},
        },
    }
    assert PASSWORD not in response.content.decode()
    assert str(mongo.port) not in response.content.decode()


def test_a_folder_that_cannot_be_listed_is_unreachable(client, user, tmp_path):
    from backends.models import StorageProviderDb

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    StorageProviderDb.objects.create(
        name="broken", storage_type="local", owner=user, login={"base_path": str(blocker)}
    )

    providers = client.get("/readyz").json()["providers"]

    assert providers == {"broken": {"type": "local", "reachable": False}}


def test_readyz_is_503_only_when_the_database_is_down_under_gunicorn(tmp_path):
    """A live server whose PostgreSQL does not answer: alive, not ready, JSON both times."""
    env = bare_env(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:9/nowhere")
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [GUNICORN, "qlued.wsgi", "-c", "qlued/gunicorn_conf.py", "-b", "127.0.0.1:0", "-w", "1"],
        cwd=ROOT,
        env={**env, "PGCONNECT_TIMEOUT": "2"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        port = _listening_port(tmp_path / "gunicorn.log", proc)
        base = f"http://127.0.0.1:{port}"

        alive = requests.get(f"{base}/healthz", timeout=10)
        ready = requests.get(f"{base}/readyz", timeout=20)

        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
        assert (ready.status_code, ready.json()) == (
            503,
            {"status": "unavailable", "database": "unreachable"},
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


def _listening_port(log: Path, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 30
    while not (found := LISTENING.search(log.read_text())):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "gunicorn did not start listening in 30 s"
        time.sleep(0.05)
    return int(found.group(1))


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_probes_are_not_redirected_to_https(client, db, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get(path).status_code == 200
