"""A real sqooler 0.9.0 spooler and cancelled jobs (issue 14, README): it never sees a job
cancelled in the queue, and the jobs API follows what it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.interop import SqoolerSide
from tests.interop.tinyspin import DISPLAY, FULL_NAME, GOOD_JOB, ask, post_job
from tests.toolenvs import SQOOLER, ensure_venv

pytestmark = pytest.mark.interop

CANCELLED = "Job cancelled by its owner."


@pytest.fixture(scope="module")
def sqooler() -> SqoolerSide:
    return SqoolerSide(ensure_venv("sqooler", SQOOLER))


@pytest.fixture
def base_path(local_provider: Any) -> Path:
    return Path(local_provider.login["base_path"])


def spool(sqooler: SqoolerSide, base_path: Path, looks: int) -> None:
    sqooler(
        "spool",
        base_path=str(base_path),
        provider="alqor",
        display_name=DISPLAY,
        sign=False,
        private_jwk=None,
        iterations=looks,
    )


def listed(client: Client, token: str) -> dict[str, str]:
    jobs = client.get("/api/v2/jobs", {"token": token}).json()["jobs"]
    return {item["job_id"]: item["status"] for item in jobs}


def test_sqooler_never_runs_a_job_cancelled_in_its_queue(
    client: Client, token: str, base_path: Path, sqooler: SqoolerSide
) -> None:
    spool(sqooler, base_path, 0)  # publishes the backend
    cancelled = post_job(client, token, GOOD_JOB)
    kept = post_job(client, token, GOOD_JOB)
    body = json.dumps({"job_id": cancelled, "token": token})
    response = client.post(f"/api/v2/{FULL_NAME}/cancel_job", body, content_type="application/json")
    assert (response.status_code, response.json()["status"]) == (200, "CANCELLED")

    spool(sqooler, base_path, 3)

    assert ask(client, "get_job_status", kept, token)[1]["status"] == "DONE"
    v2 = {"job_id": cancelled, "status": "ERROR", "detail": CANCELLED, "error_message": CANCELLED}
    assert ask(client, "get_job_status", cancelled, token) == (406, v2)
    assert not (base_path / f"results/{DISPLAY}/{cancelled}.json").exists()
    assert (base_path / f"jobs/deleted/{cancelled}.json").exists()
    assert listed(client, token) == {cancelled: "CANCELLED", kept: "DONE"}
