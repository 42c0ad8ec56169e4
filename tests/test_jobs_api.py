"""`GET jobs`, `GET jobs/{job_id}` and `cancel_job` (issue 14), on every medium."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from backends.models import Job, JobStatus
from storage_providers import Place, Ref, StorageProvider
from storage_providers.schemas import utcnow
from tests.conftest import FERMIONS_CONFIG, every_medium
from tests.jobs import (
    BACKEND,
    BAD_TOKEN,
    CANCELLED,
    EXPERIMENT,
    JOB,
    NO_STATUS,
    RESULT,
    V2,
    JobsApi,
    answer,
    error,
    finish_as_sqooler,
    missing,
    run_to_done,
    run_to_error,
    token_of,
)

pytest_generate_tests = every_medium

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture
def jobs_api(client, storage, token) -> JobsApi:  # type: ignore[no-untyped-def]
    return JobsApi(client, token)


@pytest.fixture
def bob_token(db) -> str:  # type: ignore[no-untyped-def]
    return token_of("bob")


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def record(job_id: str, status: str = "QUEUED", **changes: object) -> dict:
    """The parts of a job record a test can know in advance (times are checked apart)."""
    return {
        "job_id": job_id,
        "backend_name": BACKEND,
        "status": status,
        "shots": 3,
        "experiments": 1,
        "cancel_requested": False,
        **changes,
    }


def without_times(item: dict) -> dict:
    times = ("submitted_at", "started_at", "finished_at", "queue_position")
    return {k: v for k, v in item.items() if k not in times}


# ---- the list -------------------------------------------------------------------------------


def test_the_list_holds_the_callers_jobs_newest_first(jobs_api, bob_token):
    before = utcnow()
    ids = [jobs_api.post_id() for _ in range(3)]
    jobs_api.post_id(token=bob_token)

    code, body = answer(jobs_api.jobs())

    assert code == 200
    assert body["next_cursor"] is None
    assert [without_times(item) for item in body["jobs"]] == [record(i) for i in reversed(ids)]
    first = body["jobs"][-1]
    assert set(first) == {*record("x"), "submitted_at", "started_at", "finished_at"}
    assert ISO_Z.fullmatch(first["submitted_at"])
    assert before <= parse(first["submitted_at"]) <= utcnow()
    assert (first["started_at"], first["finished_at"]) == (None, None)


def test_the_list_sums_shots_over_experiments(jobs_api):
    job = {"a": EXPERIMENT, "b": {**EXPERIMENT, "shots": 10}, "c": {**EXPERIMENT, "shots": 1}}
    jobs_api.post_id(job)

    (item,) = jobs_api.listed()

    assert (item["shots"], item["experiments"]) == (14, 3)


def test_the_list_accepts_a_bearer_token(jobs_api, token):
    job_id = jobs_api.post_id()

    response = jobs_api.jobs(token=None, headers={"Authorization": f"Bearer {token}"})

    assert [item["job_id"] for item in response.json()["jobs"]] == [job_id]


def test_pages_follow_the_cursor_to_the_last_page(jobs_api):
    ids = [jobs_api.post_id() for _ in range(5)]
    seen, cursor, pages = [], None, 0

    while True:
        body = jobs_api.jobs(limit=2, cursor=cursor).json()
        seen += [item["job_id"] for item in body["jobs"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert seen == list(reversed(ids))


def test_jobs_posted_in_the_same_instant_are_paged_by_their_row(jobs_api):
    ids = [jobs_api.post_id() for _ in range(3)]
    Job.objects.update(submitted_at=utcnow())

    first = jobs_api.jobs(limit=2).json()
    second = jobs_api.jobs(limit=2, cursor=first["next_cursor"]).json()

    listed = [item["job_id"] for item in first["jobs"] + second["jobs"]]
    assert sorted(listed) == sorted(ids) and len(set(listed)) == 3


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # [1,2]
        ({"status": "FINISHED"}, "status"),
        ({"status": "done"}, "status"),
        ({"backend": "a_b"}, "backend"),
        ({"backend": "alqor_fermions_quantum"}, "backend"),
        ({"submitted_after": "yesterday"}, "submitted_after"),
        ({"submitted_before": "2026-13-01"}, "submitted_before"),
    ],
)
def test_a_bad_list_parameter_is_422_naming_it_before_the_token_is_checked(jobs_api, query, name):
    assert answer(jobs_api.jobs(token="wrong", **query)) == (422, missing(name))


def test_the_list_without_a_good_token_is_refused(jobs_api):
    assert answer(jobs_api.jobs(token="wrong")) == (401, error(BAD_TOKEN))
    assert answer(jobs_api.client.get(f"{V2}/jobs")) == (422, missing("token"))


def test_the_list_filters_by_status_backend_and_submission_time(jobs_api, storage):
    storage.upload_config("spins", {**FERMIONS_CONFIG, "display_name": "spins"})
    old, done = jobs_api.post_id(), jobs_api.post_id()
    spins = jobs_api.post_id(backend="alqor_spins_simulator")
    Job.objects.filter(job_id=old).update(submitted_at=utcnow() - timedelta(days=2))
    Job.objects.filter(job_id=done).update(status=JobStatus.DONE)  # ended: never looked up
    day_ago = (utcnow() - timedelta(days=1)).isoformat()

    def ids(**query: object) -> set[str]:
        return {item["job_id"] for item in jobs_api.listed(**query)}

    assert ids(status="DONE") == {done}
    assert ids(backend="alqor_spins_simulator") == {spins}
    assert ids(backend="spins") == {spins}  # the default provider, as in URLs
    assert ids(backend="alqor_spins_hardware") == set()
    assert ids(backend="other_fermions_simulator") == set()
    assert ids(submitted_after=day_ago) == {done, spins}
    assert ids(submitted_before=day_ago) == {old}
    assert ids(submitted_before=day_ago.replace("+00:00", "")) == {old}  # no zone: UTC


def test_the_list_follows_storage_and_the_built_in_spoolers_times(jobs_api, storage):
    done, failed, running, queued = (jobs_api.post_id() for _ in range(4))
    before = utcnow()
    by_age = sorted([done, failed, running, queued])  # the spooler takes the oldest id first
    outcomes = {run_to_done(storage): "DONE", run_to_error(storage, "refused"): "ERROR"}
    started = storage.claim_next("fermions", owner="s")

    listed = {item["job_id"]: item for item in jobs_api.listed()}

    for job_id, outcome in outcomes.items():
        item = listed[job_id]
        assert item["status"] == outcome
        assert before <= parse(item["started_at"]) <= parse(item["finished_at"]) <= utcnow()
        ending = storage.read(Ref(Place.ENDINGS, job_id))
        assert parse(item["started_at"]) == datetime.fromisoformat(ending["started_at"])
        assert parse(item["finished_at"]) == datetime.fromisoformat(ending["finished_at"])
    lease = storage.read(Ref(Place.LEASES, started.job_id))
    assert listed[started.job_id]["status"] == "RUNNING"
    assert parse(listed[started.job_id]["started_at"]) == parse(lease["claimed_at"])
    assert listed[by_age[3]]["status"] == "QUEUED"


def test_a_spooler_that_keeps_no_times_gets_those_the_service_first_saw(jobs_api, storage):
    """sqooler writes neither leases nor ending records."""
    job_id = jobs_api.post_id()
    claim = storage.claim_next("fermions", owner="sqooler")
    storage.delete(Ref(Place.LEASES, job_id))
    before = utcnow()
    assert jobs_api.listed()[0]["status"] == "RUNNING"
    seen_running = parse(jobs_api.listed()[0]["started_at"])
    finish_as_sqooler(storage, claim.job_id)

    (item,) = jobs_api.listed()

    assert item["status"] == "DONE"
    assert before <= seen_running <= parse(item["finished_at"]) <= utcnow()
    assert parse(item["started_at"]) == seen_running


def test_jobs_that_have_ended_cost_no_storage_read(jobs_api, storage, monkeypatch):
    for _ in range(3):
        jobs_api.post_id()
    for _ in range(3):
        run_to_done(storage)
    assert {item["status"] for item in jobs_api.listed()} == {"DONE"}
    looked: list[int] = []
    original = StorageProvider.sightings
    monkeypatch.setattr(
        StorageProvider,
        "sightings",
        lambda self, display, ids, **kw: (
            looked.append(len(ids)) or original(self, display, ids, **kw)
        ),
    )

    assert {item["status"] for item in jobs_api.listed()} == {"DONE"}
    assert looked == []


@pytest.mark.parametrize("count", [2, 12])
def test_a_page_costs_the_same_round_trips_for_two_open_jobs_as_for_twelve(
    jobs_api, storage, monkeypatch, count
):
    for _ in range(count):
        jobs_api.post_id()
    run_to_done(storage)
    storage.claim_next("fermions", owner="s")
    calls: list[str] = []
    for name in ("_read_many", "_list_ids", "_read"):
        original = getattr(type(storage), name)

        def noting(self, *args, _name=name, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            if not (_name == "_read" and args and args[0].place is Place.CONFIGS):
                calls.append(_name)  # reads within _read_many are not round trips of their own
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(type(storage), name, noting)

    assert len(jobs_api.listed(limit=100)) == count

    round_trips = [c for c in calls if c != "_read"]
    assert round_trips == ["_list_ids", "_list_ids", "_read_many", "_read_many", "_read_many"]


# ---- one job --------------------------------------------------------------------------------


def test_one_job_is_its_record_and_its_place_in_the_queue(jobs_api, storage):
    ids = sorted(jobs_api.post_id() for _ in range(2))

    first, second = (answer(jobs_api.job(job_id)) for job_id in ids)

    assert first[0] == second[0] == 200
    assert without_times(first[1]) == record(ids[0])
    assert (first[1]["queue_position"], second[1]["queue_position"]) == (1, 2)
    storage.claim_next("fermions", owner="s")
    code, now = answer(jobs_api.job(ids[0]))
    assert (code, now["status"], now["queue_position"]) == (200, "RUNNING", None)
    assert jobs_api.job(ids[1]).json()["queue_position"] == 1


def test_another_users_job_or_none_answers_like_a_missing_job_on_v2(jobs_api, bob_token):
    bobs = jobs_api.post_id(token=bob_token)
    absent = "0123456789abcdef01234567"

    assert answer(jobs_api.job(bobs)) == (406, error(NO_STATUS, bobs))
    assert answer(jobs_api.job(absent)) == (406, error(NO_STATUS, absent))
    assert answer(jobs_api.job("not-an-id")) == (406, error(NO_STATUS))
    assert answer(jobs_api.job(bobs, token="wrong")) == (401, error(BAD_TOKEN))


def test_a_backend_named_jobs_keeps_every_endpoint(jobs_api, storage, client):
    storage.upload_config("jobs", {**FERMIONS_CONFIG, "display_name": "jobs"})

    code, config = answer(client.get(f"{V2}/jobs/get_config"))
    assert (code, config["backend_name"]) == (200, "alqor_jobs_simulator")
    assert answer(client.get(f"{V2}/jobs/get_backend_status"))[1]["backend_name"] == (
        "alqor_jobs_simulator"
    )
    job_id = jobs_api.post_id(backend="jobs")
    assert jobs_api.status(job_id, backend="jobs").json()["status"] == "INITIALIZING"
    assert answer(jobs_api.cancel(job_id, backend="jobs"))[1]["status"] == "CANCELLED"
    assert [item["backend_name"] for item in jobs_api.listed()] == ["alqor_jobs_simulator"]
    assert jobs_api.job(job_id).json()["status"] == "CANCELLED"


# ---- cancel ---------------------------------------------------------------------------------


def test_cancelling_a_queued_job_takes_it_out_of_the_queue_at_once(jobs_api, storage):
    job_id = jobs_api.post_id()

    code, body = answer(jobs_api.cancel(job_id))

    assert code == 200
    assert without_times(body) == record(job_id, "CANCELLED", cancel_requested=True)
    assert parse(body["finished_at"]) <= utcnow() and body["started_at"] is None
    assert storage.list_ids(Place.QUEUED, "fermions") == []
    assert storage.claim_next("fermions", owner="s") is None
    v2 = {"job_id": job_id, "status": "ERROR", "detail": CANCELLED, "error_message": CANCELLED}
    assert answer(jobs_api.status(job_id)) == (406, v2)
    assert jobs_api.listed()[0]["status"] == "CANCELLED"


def test_cancelling_a_running_job_marks_it_and_its_spooler_ends_it_cancelled(jobs_api, storage):
    job_id = jobs_api.post_id()
    claim = storage.claim_next("fermions", owner="s")

    code, body = answer(jobs_api.cancel(job_id))

    assert code == 200
    assert without_times(body) == record(job_id, "RUNNING", cancel_requested=True)
    assert storage.conclude(claim, {**RESULT, "job_id": job_id}, "Done.") == "CANCELLED"
    (item,) = jobs_api.listed()
    assert (item["status"], item["cancel_requested"]) == ("CANCELLED", True)
    assert jobs_api.status(job_id).json()["detail"] == CANCELLED


def test_a_running_job_of_a_spooler_that_knows_no_cancelling_runs_to_done(jobs_api, storage):
    job_id = jobs_api.post_id()
    claim = storage.claim_next("fermions", owner="sqooler")
    assert jobs_api.cancel(job_id).status_code == 200

    storage.finish(claim, {**RESULT, "job_id": job_id}, "Done.")

    assert jobs_api.listed()[0]["status"] == "DONE"


@pytest.mark.parametrize("end", ["done", "error", "cancelled"])
def test_cancelling_a_job_that_has_ended_is_409(jobs_api, storage, end):
    job_id = jobs_api.post_id()
    if end == "done":
        run_to_done(storage)
    elif end == "error":
        run_to_error(storage, "refused")
    else:
        jobs_api.cancel(job_id)
    status = {"done": "DONE", "error": "ERROR", "cancelled": "CANCELLED"}[end]

    detail = f"The job has ended already ({status})."
    assert answer(jobs_api.cancel(job_id)) == (409, error(detail, job_id))


def test_cancelling_a_job_being_cancelled_is_409(jobs_api, storage):
    job_id = jobs_api.post_id()
    storage.claim_next("fermions", owner="s")
    jobs_api.cancel(job_id)

    detail = "The job is being cancelled already."
    assert answer(jobs_api.cancel(job_id)) == (409, error(detail, job_id))


def test_cancelling_a_job_its_spooler_is_ending_is_409_and_asks_nothing(jobs_api, storage):
    job_id = jobs_api.post_id()
    claim = storage.claim_next("fermions", owner="s")
    assert storage.settle(claim)

    detail = "The job has ended already, or is being ended."
    assert answer(jobs_api.cancel(job_id)) == (409, error(detail, job_id))
    assert Job.objects.get().cancel_requested_at is None


def test_cancelling_another_users_job_or_none_answers_like_a_missing_job(jobs_api, bob_token):
    bobs = jobs_api.post_id(token=bob_token)
    absent = jobs_api.post_id()
    Job.objects.filter(job_id=absent).delete()

    assert answer(jobs_api.cancel(bobs)) == (406, error(NO_STATUS, bobs))
    assert answer(jobs_api.cancel(absent)) == (406, error(NO_STATUS, absent))
    assert answer(jobs_api.cancel("../x")) == (406, error(NO_STATUS))
    assert jobs_api.job(bobs, token=bob_token).json()["status"] == "QUEUED"


@pytest.mark.parametrize(
    ("body", "backend", "expected"),
    [
        ({"job_id": None}, BACKEND, (422, missing("job_id"))),
        ({"job_id": 5}, BACKEND, (422, missing("job_id"))),
        ({"token": "wrong", "job_id": None}, "alqor_nothing_simulator", (422, missing("job_id"))),
        ({"token": "wrong"}, "alqor_nothing_simulator", (401, error(BAD_TOKEN))),
        ({}, "alqor_nothing_simulator", (404, error("Unknown back-end!"))),
        ({}, "alqor_fermions_hardware", (404, error("Unknown back-end!"))),
    ],
)
def test_cancel_answers_the_first_failing_check_in_spec_order(jobs_api, body, backend, expected):
    job_id = jobs_api.post_id()
    given = {"job_id": job_id, **body}

    assert answer(jobs_api.cancel(backend=backend, **given)) == expected


def test_get_on_cancel_job_is_405(jobs_api, client):
    response = client.get(f"{V2}/{BACKEND}/cancel_job")

    assert answer(response) == (405, error("Method not allowed."))


def test_a_cancelled_job_shows_in_the_ledger_and_the_admin_columns(jobs_api, storage):
    job_id = jobs_api.post_id()
    jobs_api.cancel(job_id)

    row = Job.objects.get()
    assert (row.status, row.backend_name, row.shots, row.experiments) == (
        JobStatus.CANCELLED,
        BACKEND,
        3,
        1,
    )
    assert row.cancel_requested_at is not None and row.finished_at is not None


def test_post_job_still_answers_exactly_the_initial_status(jobs_api):
    response = jobs_api.post(json.dumps(JOB))

    body = response.json()
    assert body == {
        "job_id": body["job_id"],
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }


# ---- admin and OpenAPI ----------------------------------------------------------------------


def test_the_admin_lists_the_ledgers_new_columns(admin_client, jobs_api):
    job_id = jobs_api.post_id()

    page = admin_client.get("/admin/backends/job/").content.decode()

    for column in ("Backend name", "Status", "Started at", "Finished at", "Shots"):
        assert column in page
    assert "Experiments" in page and "Cancel requested at" in page
    assert job_id in page and BACKEND in page
    assert admin_client.get("/admin/backends/job/?status__exact=QUEUED").status_code == 200


@pytest.mark.parametrize("mount", ["/api/v2", "/api/qiskit-cold-atom"])
def test_openapi_documents_the_jobs_endpoints(client, mount):
    schema = client.get(f"{mount}/openapi.json").json()

    paths = schema["paths"]
    assert {"get"} <= set(paths[f"{mount}/jobs"])
    assert {"get"} <= set(paths[f"{mount}/jobs/{{job_id}}"])
    cancel = paths[f"{mount}/{{backend}}/cancel_job"]["post"]
    assert {"200", "401", "404", "406", "409", "422"} <= set(cancel["responses"])
    listing = paths[f"{mount}/jobs"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {
        "token",
        "limit",
        "cursor",
        "status",
        "backend",
        "submitted_after",
        "submitted_before",
    }
    job = schema["components"]["schemas"]["JobDetailOut"]["properties"]
    assert {"job_id", "status", "started_at", "finished_at", "queue_position"} <= set(job)
