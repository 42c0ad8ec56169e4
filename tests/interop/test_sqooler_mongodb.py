"""Our API and a real sqooler 0.9.0 spooler share one MongoDB (SPEC §6, §7).

The same tiny backend as on a local folder, now on the Mongo-wire test server:
sqooler's `MongodbProviderExtended` (its client pointed at the test server, see
`sqooler_side.py`) publishes the config, runs the jobs our post_job queued and writes
status and result; our API must serve all of it, plain and signed. What sqooler wrote
is also looked at directly, database by database, as SPEC §6 lays it out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from bson import ObjectId
from django.test import Client
from pymongo import MongoClient

from spooler.signing import is_envelope, verify
from storage_providers import Place, Ref, StorageProvider
from tests.conftest import mongodb_provider
from tests.interop import SqoolerSide, mongodb_side
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
from tests.mongo import MongoServer

pytestmark = pytest.mark.interop

SIGNED = pytest.mark.parametrize("signed", [False, True], ids=["plain", "signed"])
NOT_OPERATIONAL = {
    "backend_name": FULL_NAME,
    "backend_version": "0.0.1",
    "operational": False,
    "pending_jobs": 0,
    "status_msg": "",
}

Spool = Callable[..., list[bool | None]]


@pytest.fixture
def provider_entry(user: Any, mongo: MongoServer) -> Any:
    """Provider `alqor` registered for the API, on the test server (a `mongodb://` URI)."""
    from backends.models import StorageProviderDb

    return StorageProviderDb.objects.create(
        name="alqor", storage_type="mongodb", owner=user, login=mongo.login()
    )


@pytest.fixture
def database(mongo: MongoServer) -> Iterator[MongoClient[Any]]:
    """A plain client, to look at the documents themselves."""
    with mongo.client() as client:
        yield client


@pytest.fixture
def ours(mongo: MongoServer) -> Iterator[StorageProvider]:
    """Our own provider object on the same server (reading only)."""
    provider = mongodb_provider(mongo)
    yield provider
    provider.close()


@pytest.fixture
def side_storage(mongo: MongoServer) -> dict[str, Any]:
    return mongodb_side(mongo)


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


def stored(database: MongoClient[Any], db: str, collection: str, job_id: str) -> Any:
    """The document filed under `ObjectId(job_id)`, without its `_id`; None when absent."""
    doc = database[db][collection].find_one({"_id": ObjectId(job_id)})
    if doc is not None:
        doc.pop("_id")
    return doc


def ids(database: MongoClient[Any], db: str, collection: str) -> list[str]:
    return sorted(str(doc["_id"]) for doc in database[db][collection].find({}, {"_id": 1}))


def configs(database: MongoClient[Any]) -> list[dict[str, Any]]:
    return list(database.backends.configs.find())


def private_of(key: dict[str, Any] | None) -> dict[str, Any] | None:
    return key["private"] if key else None


@SIGNED
def test_job_posted_through_our_api_runs_on_sqooler_and_is_served(
    client: Client,
    token: str,
    database: MongoClient[Any],
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

    queued = stored(database, "jobs", f"queued.{DISPLAY}", job_id)
    assert queued == GOOD_JOB | {"experiment_0": GOOD_JOB["experiment_0"] | queued["experiment_0"]}
    assert queued["experiment_0"]["wire_order"] == "sequential"
    initial = stored(database, "status", DISPLAY, job_id)
    assert initial == {
        "job_id": job_id,
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }
    if signed:  # sqooler's own INITIALIZING status, signed, replaces ours
        sqooler("sign_status", **side_storage, display_name=DISPLAY, job_id=job_id, private_jwk=key)
        signed_status = stored(database, "status", DISPLAY, job_id)
        assert is_envelope(signed_status)
        assert signed_status["payload"] == initial
    assert ask(client, "get_job_status", job_id, token) == (200, initial)
    assert ask(client, "get_job_result", job_id, token) == (200, initial)

    spool(1, key)

    assert ids(database, "jobs", f"queued.{DISPLAY}") == []
    assert ids(database, "jobs", "running") == []
    assert ids(database, "jobs", f"finished.{DISPLAY}") == [job_id]
    assert stored(database, "jobs", f"finished.{DISPLAY}", job_id) == queued
    result_doc = stored(database, "results", DISPLAY, job_id)
    assert is_envelope(result_doc) is signed
    result = result_doc["payload"] if signed else result_doc
    assert (result["status"], result["backend_name"]) == ("INITIALIZING", None)
    final = stored(database, "status", DISPLAY, job_id)
    assert not is_envelope(final)  # sqooler writes the final status plain, even when signing
    assert final["status"] == "DONE"
    assert final["detail"].startswith("Got your json.; Passed json sanity check")
    assert ask(client, "get_job_status", job_id, token) == (200, final)
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
    if signed:  # the envelope verifies for both sides, with the key as sqooler stored it
        raw = ours.read(Ref(Place.RESULTS, job_id, DISPLAY))
        assert verify(raw, ours.get_public_key(KID))
        back = sqooler(
            "read_back", **side_storage, display_name=DISPLAY, job_ids=[job_id], verify=True
        )
        assert back["jobs"][job_id]["verified"] is True


@SIGNED
def test_config_sqooler_writes_is_served_and_still_verifies_after_we_read_it(
    client: Client,
    database: MongoClient[Any],
    ours: StorageProvider,
    spool: Spool,
    sqooler_key: dict[str, Any],
    signed: bool,
) -> None:
    key = private_of(sqooler_key if signed else None)
    verdict = True if signed else None  # sqooler verifies only a signed config
    assert spool(0, key) == [None, verdict]

    [config] = configs(database)
    assert isinstance(config.pop("_id"), ObjectId)  # sqooler's random id, not the display name
    assert is_envelope(config) is signed
    if signed:
        assert config["payload"]["kid"] == KID
        [public] = database.backends.public_keys.find({"kid": KID})
        assert isinstance(public["x"], bytes)  # sqooler stores the key as BSON binary
        assert ours.get_public_key(KID) == sqooler_key["public"]
    assert client.get(f"{API}/get_config").json() == SERVED_CONFIG
    assert client.get("/api/v2/backends").json() == [SERVED_CONFIG]
    assert client.get(f"{API}/get_backend_status").json() == NOT_OPERATIONAL

    # sqooler stamps last_queue_check on every look, re-signing the config
    assert spool(1, key) == [verdict, verdict]

    [config] = configs(database)
    stamp = (config["payload"] if signed else config)["last_queue_check"]
    assert isinstance(stamp, datetime)  # a BSON date, to the second
    assert stamp.microsecond == 0
    status = client.get(f"{API}/get_backend_status").json()
    assert status == NOT_OPERATIONAL | {"operational": True}
    assert client.get(f"{API}/get_config").json() == SERVED_CONFIG

    # What the service read, sqooler still verifies; and its next look re-signs it,
    # which it refuses to do unless the stored signature is the one it would make.
    assert spool(1, key) == [verdict, verdict]
    assert len(configs(database)) == 1


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
    database: MongoClient[Any],
    spool: Spool,
    instruction: list[Any],
    reason: str,
) -> None:
    spool(0)
    job = {"experiment_0": GOOD_JOB["experiment_0"] | {"instructions": [instruction]}}
    job_id = post_job(client, token, job)

    spool(1)

    assert ids(database, "jobs", "deleted") == [job_id]
    assert ids(database, "jobs", "running") == []
    assert ids(database, "results", DISPLAY) == []
    status = stored(database, "status", DISPLAY, job_id)
    assert status["status"] == "ERROR"
    assert reason in status["error_message"]
    assert reason in status["detail"]
    assert ask(client, "get_job_status", job_id, token) == (406, status)
    assert ask(client, "get_job_result", job_id, token) == (406, status)
