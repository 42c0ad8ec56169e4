"""Our API and a real sqooler 0.9.0 spooler share one Dropbox app folder (SPEC §6, §7).

The same tiny backend as on a local folder and on MongoDB, now on the Dropbox double:
sqooler's own `DropboxProviderExtended` (its SDK, dropbox 11.36.2, reaching the double
through the environment it inherits) publishes the config, runs the jobs our post_job
queued and writes status and result; our API must serve all of it, plain and signed.
What sqooler wrote is also looked at file by file, as SPEC §6 lays it out: statuses in
the literal folder `None`, finished jobs and results under the id's user segment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.test import Client

from spooler.signing import is_envelope, verify
from storage_providers import Place, Ref, StorageProvider, build_provider
from storage_providers.dropbox import user_segment
from tests.conftest import TEST_OPTIONS
from tests.dropbox_double import DropboxDouble
from tests.interop import SqoolerSide, dropbox_side
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

ROOT = "/Backend_files"
CONFIG = f"{ROOT}/Config/{DISPLAY}/config.json"
PUBLIC_KEY = f"{ROOT}/public_keys/{KID}.json"
SIGNED = pytest.mark.parametrize("signed", [False, True], ids=["plain", "signed"])
NOT_OPERATIONAL = {
    "backend_name": FULL_NAME,
    "backend_version": "0.0.1",
    "operational": False,
    "pending_jobs": 0,
    "status_msg": "",
}

Spool = Callable[..., list[bool | None]]


def status_path(job_id: str) -> str:
    return f"{ROOT}/Status/{DISPLAY}/None/status-{job_id}.json"


def queued_path(job_id: str) -> str:
    return f"{ROOT}/Queued_Jobs/{DISPLAY}/job-{job_id}.json"


def finished_path(job_id: str, segment: str) -> str:
    return f"{ROOT}/Finished_Jobs/{DISPLAY}/{segment}/job-{job_id}.json"


def result_path(job_id: str, segment: str) -> str:
    return f"{ROOT}/Result/{DISPLAY}/{segment}/result-{job_id}.json"


def deleted_path(job_id: str) -> str:
    return f"{ROOT}/Deleted_Jobs/job-{job_id}.json"


def stored(box: DropboxDouble, path: str) -> Any:
    return json.loads(box.read(path))


def job_files(box: DropboxDouble) -> list[str]:
    """Every file of the app folder but the backend's config and public key."""
    return [p for p in box.paths() if p not in (CONFIG, PUBLIC_KEY)]


@pytest.fixture
def provider_entry(user: Any, box: DropboxDouble) -> Any:
    """Provider `alqor` registered for the API, on the Dropbox double."""
    from backends.models import StorageProviderDb

    return StorageProviderDb.objects.create(
        name="alqor", storage_type="dropbox", owner=user, login=box.login()
    )


@pytest.fixture
def ours(box: DropboxDouble) -> Iterator[StorageProvider]:
    """Our own provider object on the same app folder (reading only)."""
    provider = build_provider("dropbox", "alqor", box.login(), TEST_OPTIONS)
    yield provider
    provider.close()


@pytest.fixture
def side_storage(box: DropboxDouble) -> dict[str, Any]:
    return dropbox_side(box)


@pytest.fixture
def spool(sqooler: SqoolerSide, provider_entry: Any, side_storage: dict[str, Any]) -> Spool:
    """Publish the backend (signed with `key` when given), then let sqooler look `looks` times.

    Answers sqooler's verdicts on the stored signed config before and after.
    """

    def run(looks: int, key: dict[str, Any] | None = None) -> list[bool | None]:
        answer = sqooler(
            "spool",
            **side_storage,
            display_name=DISPLAY,
            sign=key is not None,
            private_jwk=key,
            iterations=looks,
        )
        return list(answer["config_valid"])

    return run


def private_of(key: dict[str, Any] | None) -> dict[str, Any] | None:
    return key["private"] if key else None


def served_result(job_id: str) -> dict[str, Any]:
    return {
        "backend_name": FULL_NAME,
        "display_name": DISPLAY,
        "backend_version": "0.0.1",
        "job_id": job_id,
        "qobj_id": None,
        "success": True,
        "status": "DONE",
        "header": {},
        "results": GOOD_RESULTS,
    }


@SIGNED
def test_job_posted_through_our_api_runs_on_sqooler_and_is_served(
    client: Client,
    token: str,
    box: DropboxDouble,
    ours: StorageProvider,
    spool: Spool,
    sqooler: SqoolerSide,
    sqooler_key: dict[str, Any],
    side_storage: dict[str, Any],
    signed: bool,
) -> None:
    key = private_of(sqooler_key if signed else None)
    spool(0, key)
    job_id = post_job(client, token, GOOD_JOB)
    assert job_id.split("-")[1:3] == [DISPLAY, "alice"]  # what sqooler splits the id into

    assert job_files(box) == [queued_path(job_id), status_path(job_id)]
    queued = stored(box, queued_path(job_id))
    assert queued == GOOD_JOB | {"experiment_0": GOOD_JOB["experiment_0"] | queued["experiment_0"]}
    assert queued["experiment_0"]["wire_order"] == "sequential"
    initial = stored(box, status_path(job_id))
    assert initial == {
        "job_id": job_id,
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }
    if signed:  # sqooler's own INITIALIZING status, signed, replaces ours in `None`
        sqooler("sign_status", **side_storage, display_name=DISPLAY, job_id=job_id, private_jwk=key)
        signed_status = stored(box, status_path(job_id))
        assert is_envelope(signed_status)
        assert signed_status["payload"] == initial
        assert verify(signed_status, ours.get_public_key(KID))
    assert ask(client, "get_job_status", job_id, token) == (200, initial)
    assert ask(client, "get_job_result", job_id, token) == (200, initial)

    spool(1, key)

    # sqooler found the status we wrote and updated it: no second one, no user folder
    assert job_files(box) == [
        finished_path(job_id, "alice"),
        result_path(job_id, "alice"),
        status_path(job_id),
    ]
    assert stored(box, finished_path(job_id, "alice")) == queued
    result_doc = stored(box, result_path(job_id, "alice"))
    assert is_envelope(result_doc) is signed
    result = result_doc["payload"] if signed else result_doc
    assert (result["status"], result["backend_name"]) == ("INITIALIZING", None)
    final = stored(box, status_path(job_id))
    assert not is_envelope(final)  # sqooler writes the final status plain, even when signing
    assert final["status"] == "DONE"
    assert final["detail"].startswith("Got your json.; Passed json sanity check")
    assert ask(client, "get_job_status", job_id, token) == (200, final)
    assert ask(client, "get_job_result", job_id, token) == (200, served_result(job_id))
    if signed:  # the envelope verifies for both sides, with the key as sqooler stored it
        raw = ours.read(Ref(Place.RESULTS, job_id, DISPLAY))
        assert verify(raw, ours.get_public_key(KID))
        back = sqooler(
            "read_back", **side_storage, display_name=DISPLAY, job_ids=[job_id], verify=True
        )
        assert back["jobs"][job_id]["verified"] is True


@SIGNED
def test_config_sqooler_writes_is_served_and_operational_from_its_queue_check(
    client: Client,
    box: DropboxDouble,
    ours: StorageProvider,
    spool: Spool,
    sqooler_key: dict[str, Any],
    signed: bool,
) -> None:
    key = private_of(sqooler_key if signed else None)
    verdict = True if signed else None  # sqooler verifies only a signed config
    assert spool(0, key) == [None, verdict]

    assert box.paths() == ([CONFIG, PUBLIC_KEY] if signed else [CONFIG])
    config = stored(box, CONFIG)
    assert is_envelope(config) is signed
    if signed:
        assert config["payload"]["kid"] == KID
        assert stored(box, PUBLIC_KEY) == sqooler_key["public"]
        assert ours.get_public_key(KID) == sqooler_key["public"]
        assert verify(config, ours.get_public_key(KID))
    assert ours.list_backends() == [DISPLAY]
    assert client.get(f"{API}/get_config").json() == SERVED_CONFIG
    assert client.get("/api/v2/backends").json() == [SERVED_CONFIG]
    assert client.get(f"{API}/get_backend_status").json() == NOT_OPERATIONAL

    # sqooler stamps last_queue_check on every look (an empty queue: no folder yet),
    # re-signing the config, which it refuses unless the stored signature is its own
    assert spool(1, key) == [verdict, verdict]

    config = stored(box, CONFIG)
    stamp = datetime.fromisoformat((config["payload"] if signed else config)["last_queue_check"])
    assert stamp.microsecond == 0
    status = client.get(f"{API}/get_backend_status").json()
    assert status == NOT_OPERATIONAL | {"operational": True}
    assert client.get(f"{API}/get_config").json() == SERVED_CONFIG
    assert box.paths() == ([CONFIG, PUBLIC_KEY] if signed else [CONFIG])


def test_a_username_with_dash_dot_and_at_runs_on_sqooler_and_is_served(
    client: Client, token: str, box: DropboxDouble, spool: Spool
) -> None:
    from django.contrib.auth import get_user_model

    from backends.auth import issue_token

    username = "jean-luc.picard@lab.example"
    picard = issue_token(get_user_model().objects.create_user(username, password=None))[1]
    spool(0)
    job_id = post_job(client, picard, GOOD_JOB)
    segment = user_segment(username)
    assert segment == "jean_luc_picard_lab_example"
    assert job_id.split("-")[2] == segment  # what sqooler takes for the username

    spool(1)

    assert job_files(box) == [
        finished_path(job_id, segment),
        result_path(job_id, segment),
        status_path(job_id),
    ]
    final = stored(box, status_path(job_id))
    assert final["status"] == "DONE"
    assert ask(client, "get_job_status", job_id, picard) == (200, final)
    assert ask(client, "get_job_result", job_id, picard) == (200, served_result(job_id))
    code, other = ask(client, "get_job_result", job_id, token)  # alice's token: not hers
    assert (code, other["detail"]) == (406, "Could not find the status file.")


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
    box: DropboxDouble,
    spool: Spool,
    instruction: list[Any],
    reason: str,
) -> None:
    spool(0)
    job = {"experiment_0": GOOD_JOB["experiment_0"] | {"instructions": [instruction]}}
    job_id = post_job(client, token, job)

    spool(1)

    assert job_files(box) == [deleted_path(job_id), status_path(job_id)]  # no result
    status = stored(box, status_path(job_id))
    assert status["status"] == "ERROR"
    assert reason in status["error_message"]
    assert reason in status["detail"]
    assert ask(client, "get_job_status", job_id, token) == (406, status)
    assert ask(client, "get_job_result", job_id, token) == (406, status)
