"""Our API and a real sqooler 0.9.0 spooler share one local folder (SPEC §6, §7).

sqooler runs in its own venv (`sqooler_side.py`): it publishes the config of a tiny
one-wire spin backend, claims the jobs our post_job queued, runs them and writes
status and result; our API, through Django's test client, must serve all of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from spooler.signing import PrivateKey, generate_private_jwk, is_envelope, verify
from tests.interop import SqoolerSide
from tests.interop.tinyspin import (
    API,
    DISPLAY,
    FULL_NAME,
    GOOD_JOB,
    GOOD_RESULTS,
    KID,
    SERVED_CONFIG,
    ask,
    post_job,
)

pytestmark = pytest.mark.interop

Spool = Callable[..., None]


@pytest.fixture
def base_path(local_provider: Any) -> Path:
    return Path(local_provider.login["base_path"])


@pytest.fixture
def spool(sqooler: SqoolerSide, base_path: Path) -> Spool:
    """Publish the backend (signed with `key` when given), then let sqooler look `looks` times."""

    def run(looks: int, key: dict[str, Any] | None = None) -> None:
        sqooler(
            "spool",
            base_path=str(base_path),
            provider="alqor",
            display_name=DISPLAY,
            sign=key is not None,
            private_jwk=key,
            iterations=looks,
        )

    return run


def stored(base_path: Path, folder: str, doc_id: str) -> Any:
    return json.loads((base_path / folder / f"{doc_id}.json").read_text())


def json_files(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []


def public_key(base_path: Path, kid: str) -> dict[str, Any]:
    return stored(base_path, "backends/public_keys", kid)  # type: ignore[no-any-return]


def test_job_posted_through_our_api_runs_on_sqooler_and_is_served(
    client: Client, token: str, base_path: Path, spool: Spool
) -> None:
    spool(0)
    job_id = post_job(client, token, GOOD_JOB)

    queued = stored(base_path, f"jobs/queued/{DISPLAY}", job_id)
    assert queued["experiment_0"]["wire_order"] == "sequential"
    assert queued == GOOD_JOB | {"experiment_0": GOOD_JOB["experiment_0"] | queued["experiment_0"]}
    initial = stored(base_path, f"status/{DISPLAY}", job_id)
    assert initial == {
        "job_id": job_id,
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }
    assert ask(client, "get_job_status", job_id, token) == (200, initial)
    assert ask(client, "get_job_result", job_id, token) == (200, initial)

    spool(1)

    assert json_files(base_path / "jobs/queued" / DISPLAY) == []
    assert json_files(base_path / "jobs/running") == []
    assert stored(base_path, f"jobs/finished/{DISPLAY}", job_id) == queued
    result_file = stored(base_path, f"results/{DISPLAY}", job_id)
    assert (result_file["status"], result_file["backend_name"]) == ("INITIALIZING", None)
    code, status = ask(client, "get_job_status", job_id, token)
    assert (code, status) == (200, stored(base_path, f"status/{DISPLAY}", job_id))
    assert status["status"] == "DONE"
    assert status["detail"].startswith("Got your json.; Passed json sanity check")
    assert ask(client, "get_job_result", job_id, token) == (
        200,
        {
            "backend_name": FULL_NAME,
            "display_name": DISPLAY,
            "backend_version": "0.0.1",
            "job_id": job_id,
            "qobj_id": None,
            "success": True,
            "status": "DONE",
            "header": {},
            "results": GOOD_RESULTS,
        },
    )


@pytest.mark.parametrize("signed", [False, True], ids=["plain", "signed"])
def test_config_sqooler_writes_is_served(
    client: Client, base_path: Path, spool: Spool, signed: bool
) -> None:
    key = generate_private_jwk(KID) if signed else None
    spool(0, key)

    config = stored(base_path, "backends/configs", DISPLAY)
    assert is_envelope(config) is signed
    if signed:
        assert config["payload"]["kid"] == KID
        assert public_key(base_path, KID) == PrivateKey.from_jwk(key or {}).public_jwk()
        assert verify(config, public_key(base_path, KID))
    assert client.get(f"{API}/get_config").json() == SERVED_CONFIG
    assert client.get("/api/v2/backends").json() == [SERVED_CONFIG]
    status = {
        "backend_name": FULL_NAME,
        "backend_version": "0.0.1",
        "operational": False,
        "pending_jobs": 0,
        "status_msg": "",
    }
    assert client.get(f"{API}/get_backend_status").json() == status

    spool(1, key)  # sqooler stamps last_queue_check on every look, re-signing the config

    if signed:
        assert verify(stored(base_path, "backends/configs", DISPLAY), public_key(base_path, KID))
    assert client.get(f"{API}/get_backend_status").json() == status | {"operational": True}
    assert client.get(f"{API}/get_config").json() == SERVED_CONFIG


def test_signed_statuses_and_results_sqooler_writes_are_served_as_payloads(
    client: Client, token: str, base_path: Path, spool: Spool, sqooler: SqoolerSide
) -> None:
    key = generate_private_jwk(KID)
    spool(0, key)
    job_id = post_job(client, token, GOOD_JOB)
    sqooler(
        "sign_status",
        base_path=str(base_path),
        provider="alqor",
        display_name=DISPLAY,
        job_id=job_id,
        private_jwk=key,
    )
    signed_status = stored(base_path, f"status/{DISPLAY}", job_id)
    assert verify(signed_status, public_key(base_path, KID))
    assert ask(client, "get_job_status", job_id, token) == (200, signed_status["payload"])

    spool(1, key)

    signed_result = stored(base_path, f"results/{DISPLAY}", job_id)
    assert verify(signed_result, public_key(base_path, KID))
    final_status = stored(base_path, f"status/{DISPLAY}", job_id)
    assert not is_envelope(final_status)  # sqooler writes the final status plain
    assert ask(client, "get_job_status", job_id, token) == (200, final_status)
    code, result = ask(client, "get_job_result", job_id, token)
    assert code == 200
    assert result == signed_result["payload"] | {"backend_name": FULL_NAME, "status": "DONE"}
    assert result["results"] == GOOD_RESULTS


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        pytest.param(["spin_echo", [0], []], "Instruction spin_echo not allowed.", id="unknown"),
        pytest.param(["rlx", [1], [1.0]], "Error in instruction", id="wire outside coupling map"),
    ],
)
def test_job_sqooler_refuses_is_an_error_through_our_api(
    client: Client,
    token: str,
    base_path: Path,
    spool: Spool,
    instruction: list[Any],
    reason: str,
) -> None:
    spool(0)
    job = {"experiment_0": GOOD_JOB["experiment_0"] | {"instructions": [instruction]}}
    job_id = post_job(client, token, job)

    spool(1)

    assert json_files(base_path / "jobs/deleted") == [job_id]
    assert json_files(base_path / "jobs/running") == []
    assert json_files(base_path / "results" / DISPLAY) == []
    status = stored(base_path, f"status/{DISPLAY}", job_id)
    assert status["status"] == "ERROR"
    assert reason in status["error_message"]
    assert reason in status["detail"]
    assert ask(client, "get_job_status", job_id, token) == (406, status)
    assert ask(client, "get_job_result", job_id, token) == (406, status)
