"""What only the Dropbox medium has: its layout, its ids, its token, its costs and faults.

Everything goes through the real `dropbox` SDK to the loopback double of
tests/dropbox_double.py. The lifecycle itself is in the contract suite
(tests/storage/) and the endpoint table in the API suites, which run on Dropbox too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from backends.models import Job, StorageProviderDb
from backends.providers import provider_named
from spooler.simulators import BACKENDS
from spooler.worker import Spooler, SpoolerOptions
from storage_providers import AccessDenied, NotFound, Unavailable, build_provider
from storage_providers.dropbox import DropboxOptions, DropboxProvider, user_segment
from storage_providers.registry import ProviderOptions
from tests.conftest import FERMIONS_CONFIG, spool_until_done

ROOT = Path(__file__).resolve().parent.parent
V2 = "/api/v2"
BACKEND = "alqor_fermions_simulator"
EXPERIMENT = {"instructions": [["load", [0], []], ["measure", [0], []]], "num_wires": 8, "shots": 2}
JOB = {"experiment_0": {**EXPERIMENT, "wire_order": "interleaved"}}
UNREACHABLE = "The storage provider is not reachable right now. Try again later."
STATUS_OF = "/Backend_files/Status/fermions/None/status-{}.json"


def error(detail: str, job_id: str = "None") -> dict:
    return {"job_id": job_id, "status": "ERROR", "detail": detail, "error_message": detail}


def provider_on(box, **options) -> DropboxProvider:  # type: ignore[no-untyped-def]
    chosen = DropboxOptions(**{"config_cache_seconds": 0.0, **options})
    provider = build_provider("dropbox", "alqor", box.login(), ProviderOptions(dropbox=chosen))
    assert isinstance(provider, DropboxProvider)
    return provider


@pytest.fixture
def lab(db, user, box):  # type: ignore[no-untyped-def]
    """Provider `alqor` on the Dropbox double, with the fermions backend configured."""
    StorageProviderDb.objects.create(
        name="alqor", storage_type="dropbox", owner=user, login=box.login()
    )
    provider = provider_on(box)
    provider.upload_config("fermions", json.loads(json.dumps(FERMIONS_CONFIG)))
    box.calls.clear()
    yield provider
    provider.close()


def post(client, token: str, job: dict | None = None):  # type: ignore[no-untyped-def]
    return client.post(
        f"{V2}/{BACKEND}/post_job",
        {"job": json.dumps(job or {"experiment_0": EXPERIMENT}), "token": token},
        content_type="application/json",
    )


def user_token(username: str) -> str:
    from django.contrib.auth import get_user_model

    from backends.auth import issue_token

    return issue_token(get_user_model().objects.create_user(username, password=None))[1]


# ---- ids and the layout, as sqooler's Dropbox spoolers read them -----------------------------


@pytest.mark.parametrize(
    ("username", "segment"),
    [
        ("alice", "alice"),
        ("jean-luc.picard@lab.example", "jean_luc_picard_lab_example"),
        ("bob+test", "bob_test"),
        ("Élodie", "_lodie"),
        ("x" * 150, "x" * 150),
    ],
)
def test_the_user_segment_keeps_only_letters_digits_and_underscores(username, segment):
    assert user_segment(username) == segment


def test_job_ids_have_the_form_spoolers_split(box):
    provider = provider_on(box)
    job_id = provider.new_job_id("fermions", "jean-luc.picard@lab")

    assert re.fullmatch(r"\d{8}_\d{6}-fermions-jean_luc_picard_lab-[0-9a-f]{5}", job_id)
    assert job_id.split("-")[2] == "jean_luc_picard_lab"
    assert provider.is_job_id(job_id)


def test_the_longest_job_id_fits_the_ledger(user, box):
    provider = provider_on(box)
    job_id = provider.new_job_id("d" * 100, "u" * 150)
    row = StorageProviderDb.objects.create(
        name="alqor", storage_type="dropbox", owner=user, login=box.login()
    )

    Job.objects.create(job_id=job_id, storage_provider=row, display_name="d" * 100, owner=user)

    assert len(job_id) == 273 and provider.is_job_id(job_id)
    assert Job.objects.get().job_id == job_id  # a column too short fails on PostgreSQL


def test_post_job_leaves_status_under_none_and_the_job_in_its_queue(client, token, lab, box):
    job_id = post(client, token).json()["job_id"]

    assert box.paths() == [
        "/Backend_files/Config/fermions/config.json",
        f"/Backend_files/Queued_Jobs/fermions/job-{job_id}.json",
        STATUS_OF.format(job_id),
    ]
    assert json.loads(box.read(STATUS_OF.format(job_id))) == {
        "job_id": job_id,
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }


def test_a_username_with_dash_dot_and_at_round_trips_through_spooler_and_api(client, lab, box):
    token = user_token("jean-luc.picard@lab.example")
    job_id = post(client, token).json()["job_id"]
    spooler = Spooler(lab, [BACKENDS["fermions"]], options=SpoolerOptions())
    spooler.announce()

    assert spooler.step() is True

    segment = "jean_luc_picard_lab_example"
    assert f"-fermions-{segment}-" in job_id
    assert f"/Backend_files/Finished_Jobs/fermions/{segment}/job-{job_id}.json" in box.paths()
    assert f"/Backend_files/Result/fermions/{segment}/result-{job_id}.json" in box.paths()
    query = {"job_id": job_id, "token": token}
    assert client.get(f"{V2}/{BACKEND}/get_job_status", query).json()["status"] == "DONE"
    result = client.get(f"{V2}/{BACKEND}/get_job_result", query).json()
    assert (result["status"], result["results"][0]["data"]["memory"]) == ("DONE", ["1", "1"])


def test_a_malformed_dropbox_id_never_becomes_a_path(client, token, lab, box, settings):
    settings.DROPBOX_CACHE_SECONDS = 5
    client.get(f"{V2}/{BACKEND}/get_config")  # the config is cached: no download but the job's
    box.calls.clear()
    malformed = ["../Config/fermions/config", "20261202_010203-fermions-alice-abcd", "x" * 300]
    malformed += ["0123456789abcdef01234567"]  # an ObjectId is no Dropbox id
    answers = [
        client.get(f"{V2}/{BACKEND}/get_job_status", {"job_id": job_id, "token": token})
        for job_id in malformed
    ]

    missing = "Could not find the status file."
    assert [(a.status_code, a.json()) for a in answers] == [(406, error(missing))] * 4
    assert box.calls["files/download"] == 0


def test_a_well_formed_missing_id_answers_with_that_id(client, token, lab):
    job_id = "20261202_010203-fermions-alice-abcde"

    response = client.get(f"{V2}/{BACKEND}/get_job_result", {"job_id": job_id, "token": token})

    missing = "Could not find the status file."
    assert (response.status_code, response.json()) == (406, error(missing, job_id))


def test_a_listing_longer_than_one_page_is_followed_to_its_end(lab, box):
    ids = [lab.new_job_id("fermions", f"user{n}") for n in range(10)]
    for job_id in ids:
        lab.submit_job("fermions", job_id, JOB)

    claimed = []
    while (claim := lab.claim_next("fermions", owner="s1")) is not None:
        claimed.append(claim.job_id)

    assert sorted(claimed) == sorted(ids)
    assert box.calls["files/list_folder/continue"] >= 3


# ---- what a request costs --------------------------------------------------------------------


def test_calls_per_request(client, token, lab, box, settings):
    settings.DROPBOX_CACHE_SECONDS = 5
    assert client.get(f"{V2}/{BACKEND}/get_config").status_code == 200  # fills the cache
    box.calls.clear()

    client.get(f"{V2}/{BACKEND}/get_config")
    client.get(f"{V2}/{BACKEND}/get_backend_status")
    from_cache = sum(box.calls.values())
    box.calls.clear()
    job_id = post(client, token).json()["job_id"]
    on_post = dict(box.calls)
    box.calls.clear()
    client.get(f"{V2}/{BACKEND}/get_job_status", {"job_id": job_id, "token": token})
    on_status = dict(box.calls)

    assert from_cache == 0
    assert on_post == {"files/upload": 2}
    assert on_status == {"files/download": 1}


def test_one_client_and_one_token_serve_many_requests(client, token, lab, box):
    box.calls.clear()
    job_id = post(client, token).json()["job_id"]
    for _ in range(5):
        client.get(f"{V2}/{BACKEND}/get_job_status", {"job_id": job_id, "token": token})

    _, first = provider_named("alqor")
    _, again = provider_named("alqor")
    assert first is again
    assert box.calls["oauth2/token"] == 1
    assert box.calls["users/get_current_account"] == 0


def test_a_token_that_expires_mid_run_is_refreshed_and_the_request_succeeds(
    client, token, lab, box
):
    job_id = post(client, token).json()["job_id"]
    refreshed = box.calls["oauth2/token"]

    box.expire_access_tokens()
    response = client.get(f"{V2}/{BACKEND}/get_job_status", {"job_id": job_id, "token": token})

    assert (response.status_code, response.json()["status"]) == (200, "INITIALIZING")
    assert box.calls["oauth2/token"] == refreshed + 1


# ---- faults ----------------------------------------------------------------------------------


def test_revoked_credentials_are_access_denied_and_a_503_naming_no_secret(client, lab, box, caplog):
    box.revoke()
    fresh = provider_on(box)

    with pytest.raises(AccessDenied):
        fresh.list_backends()
    response = client.get(f"{V2}/{BACKEND}/get_config")

    assert (response.status_code, response.json()) == (503, error(UNREACHABLE))
    secrets = [box.login()["app_secret"], box.login()["refresh_token"]]
    for text in (response.content.decode(), caplog.text, repr(fresh)):
        assert not any(secret in text for secret in secrets)
    fresh.close()


def test_a_short_rate_limit_is_waited_out_once(lab, box):
    job_id = lab.new_job_id("fermions", "alice")
    lab.submit_job("fermions", job_id, JOB)
    box.inject("files/download", 429, retry_after=1)

    assert lab.get_status("fermions", job_id)["status"] == "INITIALIZING"
    assert box.calls["files/download"] == 2


def test_a_long_or_repeated_rate_limit_is_unavailable(lab, box):
    job_id = lab.new_job_id("fermions", "alice")
    lab.submit_job("fermions", job_id, JOB)

    box.inject("files/download", 429, retry_after=60)
    with pytest.raises(Unavailable):
        lab.get_status("fermions", job_id)
    box.inject("files/download", 429, times=2, retry_after=1)
    with pytest.raises(Unavailable):
        lab.get_status("fermions", job_id)


@pytest.mark.parametrize("status", [500, 503])
def test_a_dropbox_failure_is_a_503_and_the_next_request_works(client, token, lab, box, status):
    box.inject(None, status)

    failed = client.get(f"{V2}/{BACKEND}/get_config")
    worked = client.get(f"{V2}/{BACKEND}/get_config")

    assert (failed.status_code, failed.json()) == (503, error(UNREACHABLE))
    assert worked.status_code == 200


def test_a_write_failing_after_the_config_was_read_is_406_and_leaves_no_row(
    client, token, lab, box
):
    box.inject("files/upload", 503, times=2)

    response = post(client, token)

    detail = "The job could not be written to storage. Try again later."
    assert (response.status_code, response.json()) == (406, error(detail))
    assert not Job.objects.exists()
    assert box.paths() == ["/Backend_files/Config/fermions/config.json"]


def test_an_unreachable_dropbox_is_unavailable(box):
    provider = provider_on(box, timeout=0.5)
    box.stop()
    try:
        with pytest.raises(Unavailable):
            provider.get_config("fermions")
    finally:
        box.start()
    with pytest.raises(NotFound):
        provider.get_config("fermions")  # back, and empty


def test_the_built_in_spooler_command_runs_a_job_on_dropbox(lab, box):
    job_id = lab.new_job_id("fermions", "alice")
    lab.submit_job("fermions", job_id, JOB)
    returncode, log = spool_until_done(lab, box.login(), job_id)

    assert lab.get_status("fermions", job_id)["status"] == "DONE"
    assert lab.get_result("fermions", job_id)["results"][0]["data"]["memory"] == ["1", "1"]
    assert returncode == 0
    assert "on dropbox storage alqor" in log
    assert box.login()["app_secret"] not in log


def test_a_finished_job_polled_again_within_cache_seconds_costs_no_download(
    client, token, lab, box, settings
):
    settings.CACHE_SECONDS = 5
    job_id = post(client, token).json()["job_id"]
    query = {"job_id": job_id, "token": token}
    assert client.get(f"{V2}/{BACKEND}/get_job_status", query).json()["status"] == "INITIALIZING"
    claim = lab.claim_next("fermions", owner="s1")
    lab.finish(claim, {"job_id": job_id, "results": []}, "Done.")
    box.calls.clear()

    answers = [client.get(f"{V2}/{BACKEND}/get_job_result", query).json() for _ in range(3)]

    assert [a["status"] for a in answers] == ["DONE"] * 3
    assert box.calls["files/download"] == 2  # the status once, the result once
