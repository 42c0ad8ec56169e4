"""What only the MongoDB medium has: its layout, its login, its client, outages.

The lifecycle itself is in the contract suite (tests/storage/) and the endpoint
table in the API suites, both of which run on MongoDB too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bson import Binary, ObjectId

from backends.models import Job, StorageProviderDb
from backends.providers import provider_named
from spooler.simulators import BACKENDS
from spooler.worker import Spooler, SpoolerOptions
from storage_providers import AccessDenied, Unavailable, build_provider
from storage_providers.mongodb import MongodbProvider, MongoTimeouts, mongo_uri
from tests.conftest import FERMIONS_CONFIG, mongodb_provider, spool_until_done
from tests.mongo import PASSWORD, USERNAME

ROOT = Path(__file__).resolve().parent.parent
V2 = "/api/v2"
BACKEND = "alqor_fermions_simulator"
EXPERIMENT = {"instructions": [["load", [0], []], ["measure", [0], []]], "num_wires": 8, "shots": 2}
JOB = {"experiment_0": {**EXPERIMENT, "wire_order": "interleaved"}}
UNREACHABLE = "The storage provider is not reachable right now. Try again later."


def error(detail: str, job_id: str = "None") -> dict:
    return {"job_id": job_id, "status": "ERROR", "detail": detail, "error_message": detail}


@pytest.fixture
def lab(db, user, mongo):  # type: ignore[no-untyped-def]
    """Provider `alqor` on the Mongo-wire server, with the fermions backend configured."""
    StorageProviderDb.objects.create(
        name="alqor", storage_type="mongodb", owner=user, login=mongo.login()
    )
    provider = mongodb_provider(mongo)
    provider.upload_config("fermions", json.loads(json.dumps(FERMIONS_CONFIG)))
    yield provider
    provider.close()


def post(client, token: str, job: dict | None = None):  # type: ignore[no-untyped-def]
    return client.post(
        f"{V2}/{BACKEND}/post_job",
        {"job": json.dumps(job or {"experiment_0": EXPERIMENT}), "token": token},
        content_type="application/json",
    )


# ---- the layout, as sqooler's Mongo spoolers read it -----------------------------------------


def test_post_job_leaves_the_status_and_the_job_where_mongo_spoolers_read_them(
    client, token, lab, mongo
):
    job_id = post(client, token).json()["job_id"]

    with mongo.client() as raw:
        status = raw["status"]["fermions"].find_one({"_id": ObjectId(job_id)})
        queued = raw["jobs"]["queued.fermions"].find_one({"_id": ObjectId(job_id)})
        collections = sorted(raw["jobs"].list_collection_names())
    assert status == {
        "_id": ObjectId(job_id),
        "job_id": job_id,
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }
    assert queued == {
        "_id": ObjectId(job_id),
        "experiment_0": {**EXPERIMENT, "wire_order": "interleaved"},
    }
    assert collections == ["queued.fermions"]


def test_a_finished_job_is_in_the_collections_of_spec_6(lab, mongo):
    job_id = lab.new_job_id("fermions", "alice")
    lab.submit_job("fermions", job_id, {"experiment_0": EXPERIMENT})
    claim = lab.claim_next("fermions", owner="s1")
    with mongo.client() as raw:
        lease = raw["jobs"]["leases"].find_one({"_id": ObjectId(job_id)})
        running = raw["jobs"]["running"].count_documents({"_id": ObjectId(job_id)})
    lab.finish(claim, {"job_id": job_id, "results": []}, "Done.")

    assert (lease["owner"], lease["display_name"], running) == ("s1", "fermions", 1)
    with mongo.client() as raw:
        assert raw["results"]["fermions"].find_one({"_id": ObjectId(job_id)})["job_id"] == job_id
        assert raw["jobs"]["finished.fermions"].count_documents({"_id": ObjectId(job_id)}) == 1
        assert raw["jobs"]["running"].count_documents({}) == 0
        assert raw["jobs"]["leases"].count_documents({}) == 0
        assert raw["status"]["fermions"].find_one({"_id": ObjectId(job_id)})["status"] == "DONE"


def test_configs_are_found_by_display_name_and_keep_a_random_id(lab, mongo):
    with mongo.client() as raw:
        stored = list(raw["backends"]["configs"].find())

    assert len(stored) == 1
    assert isinstance(stored[0].pop("_id"), ObjectId)
    assert stored[0] == FERMIONS_CONFIG


def test_the_spoolers_last_queue_check_is_a_bson_date_and_the_backend_operational(
    client, lab, mongo
):
    spooler = Spooler(lab, [BACKENDS["fermions"]], options=SpoolerOptions())
    spooler.announce()

    with mongo.client(tz_aware=False) as raw:
        stamp = raw["backends"]["configs"].find_one({"display_name": "fermions"})
    status = client.get(f"{V2}/{BACKEND}/get_backend_status").json()

    assert isinstance(stamp["last_queue_check"], datetime)
    assert stamp["last_queue_check"].tzinfo is None  # pymongo hands back naive UTC
    age = datetime.now(UTC) - stamp["last_queue_check"].replace(tzinfo=UTC)
    assert 0 <= age.total_seconds() < 60
    assert status["operational"] is True


def test_a_config_sqooler_stamped_is_served_with_its_date_as_utc(client, lab, mongo):
    naive = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with mongo.client() as raw:
        raw["backends"]["configs"].update_one(
            {"display_name": "fermions"}, {"$set": {"last_queue_check": naive}}
        )

    status = client.get(f"{V2}/{BACKEND}/get_backend_status").json()

    assert status["operational"] is True
    assert lab.get_config("fermions")["last_queue_check"] == naive.replace(tzinfo=UTC)


def test_a_public_key_stored_with_binary_x_reads_back_as_text(lab, mongo):
    with mongo.client() as raw:
        raw["backends"]["public_keys"].insert_one(
            {"kid": "k1", "x": Binary(b"QUJD"), "kty": "OKP", "crv": "Ed25519"}
        )

    assert lab.get_public_key("k1") == {"kid": "k1", "x": "QUJD", "kty": "OKP", "crv": "Ed25519"}


def test_a_job_mongodb_cannot_hold_is_refused_before_it_is_stored(client, token, lab, mongo):
    job = {"experiment_0": {**EXPERIMENT, "seed": 2**64}}

    response = post(client, token, job)

    detail = "Invalid job: experiment_0 holds an integer that does not fit in 64 bits."
    assert (response.status_code, response.json()) == (406, error(detail))
    assert not Job.objects.exists()
    with mongo.client() as raw:
        assert raw["status"]["fermions"].count_documents({}) == 0


# ---- the login and the client ----------------------------------------------------------------


def test_a_bare_host_becomes_the_srv_uri_with_percent_encoded_credentials():
    uri, credentials = mongo_uri("lab@x", "p@ss:w/rd", "cluster0.example.net")

    assert uri == (
        "mongodb+srv://lab%40x:p%40ss%3Aw%2Frd@cluster0.example.net/?retryWrites=true&w=majority"
    )
    assert credentials == {}


@pytest.mark.parametrize("url", ["mongodb://db.lab:27017/", "mongodb+srv://cluster0.example.net/"])
def test_a_full_uri_is_used_as_given_with_the_credentials_beside_it(url):
    assert mongo_uri("lab", "p@ss", url) == (url, {"username": "lab", "password": "p@ss"})


def test_one_client_per_provider_entry_is_kept_across_requests(client, lab):
    for _ in range(3):
        assert client.get(f"{V2}/{BACKEND}/get_config").status_code == 200
    _, first = provider_named("alqor")
    kept = first.client
    assert client.get(f"{V2}/{BACKEND}/get_config").status_code == 200
    _, again = provider_named("alqor")

    assert again is first and again.client is kept


def test_the_timeouts_come_from_the_settings(settings, lab):
    settings.MONGODB_SERVER_SELECTION_TIMEOUT = 0.25
    settings.MONGODB_CONNECT_TIMEOUT = 0.5
    settings.MONGODB_SOCKET_TIMEOUT = 2

    _, provider = provider_named("alqor")

    options = provider.client.options
    assert (options.server_selection_timeout, options.pool_options.connect_timeout) == (0.25, 0.5)
    assert options.pool_options.socket_timeout == 2


def test_wrong_credentials_are_access_denied_and_a_503_that_names_no_secret(
    client, user, mongo, caplog
):
    login = {**mongo.login(), "mongodb_password": "wrong-password"}
    StorageProviderDb.objects.create(name="alqor", storage_type="mongodb", owner=user, login=login)
    provider = build_provider("mongodb", "alqor", login)

    with pytest.raises(AccessDenied):
        provider.list_backends()
    response = client.get(f"{V2}/{BACKEND}/get_config")

    assert (response.status_code, response.json()) == (503, error(UNREACHABLE))
    for text in (response.content.decode(), caplog.text, repr(provider)):
        assert "wrong-password" not in text and PASSWORD not in text
        assert str(mongo.port) not in text
    provider.close()


# ---- outages ---------------------------------------------------------------------------------


def quick(mongo) -> MongodbProvider:  # type: ignore[no-untyped-def]
    login = mongo.login()
    return MongodbProvider(
        "alqor",
        username=login["mongodb_username"],
        password=login["mongodb_password"],
        database_url=login["mongodb_database_url"],
        timeouts=MongoTimeouts(server_selection=0.5, connect=0.5, socket=2),
    )


def test_an_outage_answers_503_everywhere_then_the_service_recovers_by_itself(
    client, token, lab, mongo, settings
):
    settings.MONGODB_SERVER_SELECTION_TIMEOUT = 0.5
    job_id = post(client, token).json()["job_id"]
    query = {"job_id": job_id, "token": token}

    mongo.stop()
    down = [
        client.get(f"{V2}/{BACKEND}/get_config"),
        client.get(f"{V2}/{BACKEND}/get_backend_status"),
        post(client, token),
        client.get(f"{V2}/{BACKEND}/get_job_status", query),
        client.get(f"{V2}/{BACKEND}/get_job_result", query),
        client.get(f"{V2}/backends"),
    ]
    mongo.start()
    up = [
        client.get(f"{V2}/{BACKEND}/get_config"),
        client.get(f"{V2}/{BACKEND}/get_job_status", query),
        post(client, token),
    ]

    assert [(r.status_code, r.json()) for r in down[:5]] == [(503, error(UNREACHABLE))] * 5
    assert (down[5].status_code, down[5].json()) == (200, [])  # skipped and logged
    assert [r.status_code for r in up] == [200, 200, 200]
    assert up[1].json()["status"] == "INITIALIZING"
    assert Job.objects.count() == 2  # the post during the outage left no ledger row


def test_a_write_that_fails_after_the_config_was_read_is_406_and_leaves_no_row(
    client, token, lab, mongo, settings
):
    settings.CACHE_SECONDS = 60  # the config is read (and cached) before the outage
    settings.MONGODB_SERVER_SELECTION_TIMEOUT = 0.5
    assert client.get(f"{V2}/{BACKEND}/get_config").status_code == 200

    mongo.stop()
    response = post(client, token)
    mongo.start()

    detail = "The job could not be written to storage. Try again later."
    assert (response.status_code, response.json()) == (406, error(detail))
    assert not Job.objects.exists()
    with mongo.client() as raw:
        assert raw["status"]["fermions"].count_documents({}) == 0


def test_a_spooler_rides_out_an_outage_and_runs_the_job_afterwards(lab, mongo):
    provider = quick(mongo)
    spooler = Spooler(provider, [BACKENDS["fermions"]], options=SpoolerOptions(idle_sleep=0.01))
    spooler.announce()
    job_id = lab.new_job_id("fermions", "alice")
    lab.submit_job(
        "fermions", job_id, {"experiment_0": {**EXPERIMENT, "wire_order": "interleaved"}}
    )

    mongo.stop()
    with pytest.raises(Unavailable):
        spooler.step()
    mongo.start()

    assert spooler.step() is True
    assert lab.get_status("fermions", job_id)["status"] == "DONE"
    provider.close()


# ---- the medium's driver is loaded only where it is used -------------------------------------


def test_a_worker_and_a_spooler_on_local_storage_never_import_pymongo(tmp_path):
    script = f"""
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()
import qlued.urls, backends.api, backends.admin
from storage_providers import build_provider
from spooler.worker import Spooler
from spooler.simulators import BACKENDS
provider = build_provider("local", "alqor", {{"base_path": {str(tmp_path)!r}}})
Spooler(provider, list(BACKENDS.values())).announce()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pymongo", "dropbox")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert done.stdout.strip() == "[]"


def test_the_built_in_spooler_command_runs_a_job_on_mongodb(lab, mongo):
    job_id = lab.new_job_id("fermions", "alice")
    lab.submit_job(
        "fermions", job_id, {"experiment_0": {**EXPERIMENT, "wire_order": "interleaved"}}
    )
    returncode, log = spool_until_done(lab, mongo.login(), job_id)

    assert lab.get_status("fermions", job_id)["status"] == "DONE"
    assert lab.get_result("fermions", job_id)["results"][0]["data"]["memory"] == ["1", "1"]
    assert returncode == 0
    assert "on mongodb storage alqor" in log
    assert USERNAME not in log and PASSWORD not in log
