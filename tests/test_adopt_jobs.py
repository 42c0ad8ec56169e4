"""`manage.py adopt_jobs` (issue 14): jobs from before the switch get their owner, on every
medium."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from uuid import uuid4

import pytest
from django.core.management import CommandError, call_command

from backends.models import Job, JobStatus
from backends.services import _submitted_at
from storage_providers import StorageProvider
from tests.conftest import FERMIONS_CONFIG, every_medium
from tests.jobs import EXPERIMENT, JobsApi, run_to_done, token_of

pytest_generate_tests = every_medium

OLD_JOB = {"experiment_0": EXPERIMENT, "experiment_1": {**EXPERIMENT, "shots": 5}}


def old_job(storage: StorageProvider, display: str = "fermions") -> str:
    """A job as the replaced service queued it: in storage, in no ledger."""
    if storage.is_job_id("0" * 24):
        job_id = uuid4().hex[:24]  # what sqooler and the replaced service make
    else:
        job_id = storage.new_job_id(display, "alice")
    storage.submit_job(display, job_id, OLD_JOB)
    return job_id


def adopt(*args: str) -> str:
    out = StringIO()
    call_command("adopt_jobs", "--provider", "alqor", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def alice_api(client, storage, token) -> JobsApi:  # type: ignore[no-untyped-def]
    return JobsApi(client, token)


def test_jobs_in_no_ledger_become_the_users_and_show_where_they_stand(storage, alice_api):
    done, queued = sorted(old_job(storage) for _ in range(2))
    run_to_done(storage)  # the oldest

    out = adopt("--user", "alice")

    assert out.splitlines() == [
        "fermions: adopted 2 jobs for alice, 0 already known.",
        "Adopted 2 jobs of alqor for alice.",
    ]
    listed = {item["job_id"]: item for item in alice_api.listed()}
    assert {job_id: item["status"] for job_id, item in listed.items()} == {
        queued: "QUEUED",
        done: "DONE",
    }
    assert {(item["shots"], item["experiments"]) for item in listed.values()} == {(8, 2)}
    assert listed[queued]["backend_name"] == "alqor_fermions_simulator"
    assert alice_api.status(done).json()["status"] == "DONE"


def test_jobs_already_in_the_ledger_keep_their_owner(storage, alice_api):
    bob = JobsApi(alice_api.client, token_of("bob"))
    bobs = bob.post_id()
    old = old_job(storage)

    out = adopt("--user", "alice")

    assert "fermions: adopted 1 jobs for alice, 1 already known." in out
    assert Job.objects.get(job_id=bobs).owner.username == "bob"
    assert [item["job_id"] for item in alice_api.listed()] == [old]


def test_adopting_twice_adopts_nothing_new(storage, user):
    old_job(storage)
    adopt("--user", "alice")

    assert "Adopted 0 jobs of alqor for alice." in adopt("--user", "alice")
    assert Job.objects.count() == 1


def test_display_takes_one_backend_only(storage, user):
    storage.upload_config("spins", {**FERMIONS_CONFIG, "display_name": "spins"})
    old_job(storage)
    spins = old_job(storage, "spins")

    out = adopt("--user", "alice", "--display", "spins")

    assert out.splitlines()[0] == "spins: adopted 1 jobs for alice, 0 already known."
    assert list(Job.objects.values_list("job_id", flat=True)) == [spins]
    assert Job.objects.get().status == JobStatus.QUEUED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "No user named 'nobody'."),
        (["--user", "alice", "--display", "nothing"], "No backend 'nothing' on alqor."),
        (["--user", "alice", "--display", "../x"], "No backend '../x' on alqor."),
    ],
)
def test_bad_input_is_a_command_error(storage, user, args, message):
    with pytest.raises(CommandError, match=message.replace(".", r"\.")):
        adopt(*args)
    assert not Job.objects.exists()


def test_an_unknown_provider_is_a_command_error(db):
    with pytest.raises(CommandError, match="No storage provider named 'alqor'"):
        adopt("--user", "alice")


def test_a_dropbox_id_gives_its_submission_time_and_an_object_id_none():
    assert _submitted_at("20261202_101500-fermions-bob-3f9a1") == datetime(
        2026, 12, 2, 10, 15, tzinfo=UTC
    )
    assert _submitted_at("f3a9c1e07b2d4c5e9a8b7c6d") is None
