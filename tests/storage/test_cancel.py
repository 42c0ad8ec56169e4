"""Cancelling a job, and where jobs stand, asserted once for every medium (issue 14).

A queued job is taken out of the queue with the claim primitive, so exactly one of a
cancel and a spooler's claim wins; a running job gets an ending record that its
spooler reads between experiments and at its end (`settle`), where again exactly one
of the two wins. The race is run many times on each medium.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from storage_providers import (
    CANCEL_DETAIL,
    CancelOutcome,
    NotFound,
    Place,
    Ref,
    StorageProvider,
)
from storage_providers.schemas import utcnow
from tests.conftest import FERMIONS_CONFIG
from tests.storage.test_contract import (
    JOB,
    RESULT,
    expire,
    ids_by_age,
    queue,
    status,
    submit,
)

CANCELLED = status("x", "ERROR", CANCEL_DETAIL, CANCEL_DETAIL)
RACES = 50


def cancelled(job_id: str) -> dict:
    return {**CANCELLED, "job_id": job_id}


def result_of(provider: StorageProvider, job_id: str) -> dict | None:
    try:
        return provider.get_result("fermions", job_id)
    except NotFound:
        return None


def run_to_end(provider: StorageProvider, display: str = "fermions") -> tuple[str, bool]:
    """What the built-in spooler does with the next job: settle, then finish or stop it."""
    claim = provider.claim_next(display, owner="s1")
    assert claim is not None
    if provider.settle(claim):
        assert provider.finish(claim, {**RESULT, "job_id": claim.job_id}, "Done.")
        return claim.job_id, True
    assert provider.stop_cancelled(claim)
    return claim.job_id, False


# ---- a queued job ---------------------------------------------------------------------------


def test_a_queued_job_leaves_the_queue_at_once_for_deleted_with_status_error(provider):
    job_id = submit(provider)

    assert provider.cancel_job("fermions", job_id) is CancelOutcome.CANCELLED

    assert queue(provider) == []
    assert provider.read(Ref(Place.DELETED, job_id)) == JOB
    assert provider.get_status("fermions", job_id) == cancelled(job_id)
    assert provider.list_ids(Place.ENDINGS) == []


def test_a_job_cancelled_after_a_spooler_listed_the_queue_is_never_claimed(make_provider, provider):
    first, second, _ = ids_by_age(provider)
    submit(provider, first)
    submit(provider, second)
    spooler = make_provider()
    assert spooler.claim_next("fermions", owner="s1").job_id == first  # its batch holds second

    assert provider.cancel_job("fermions", second) is CancelOutcome.CANCELLED

    assert spooler.claim_next("fermions", owner="s1") is None
    assert provider.get_status("fermions", second) == cancelled(second)
    assert provider.list_ids(Place.RUNNING) == [first]


def test_a_handed_back_job_cancelled_in_the_queue_keeps_no_lease(provider):
    job_id = submit(provider)
    provider.claim_next("fermions", owner="s1")
    expire(provider)  # back in the queue, with its handed-back lease

    assert provider.cancel_job("fermions", job_id) is CancelOutcome.CANCELLED

    assert provider.list_ids(Place.LEASES) == []
    assert provider.list_ids(Place.RUNNING) == []


# ---- a running job --------------------------------------------------------------------------


def test_a_running_job_is_marked_and_its_spooler_sees_the_request(provider):
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    assert provider.cancel_requested(claim) is False

    assert provider.cancel_job("fermions", job_id) is CancelOutcome.CANCELLING

    assert provider.cancel_requested(claim) is True
    assert provider.list_ids(Place.RUNNING) == [job_id]  # its spooler stops it, not the cancel
    assert provider.get_status("fermions", job_id)["status"] == "INITIALIZING"


def test_a_spooler_stopping_a_cancelled_job_writes_the_cancellation_and_no_result(provider):
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    provider.cancel_job("fermions", job_id)

    assert provider.settle(claim) is False
    assert provider.stop_cancelled(claim) is True

    assert claim.cancelled is True
    assert provider.get_status("fermions", job_id) == cancelled(job_id)
    assert provider.read(Ref(Place.DELETED, job_id)) == JOB
    assert result_of(provider, job_id) is None
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.LEASES) == []
    ending = provider.read(Ref(Place.ENDINGS, job_id))
    assert ending["by"] == "owner"
    assert ending["started_at"] is not None and ending["finished_at"] is not None


def test_cancelling_a_running_job_twice_is_still_cancelling(provider):
    job_id = submit(provider)
    provider.claim_next("fermions", owner="s1")
    provider.cancel_job("fermions", job_id)

    assert provider.cancel_job("fermions", job_id) is CancelOutcome.CANCELLING


def test_a_job_its_spooler_has_settled_is_too_late_to_cancel(provider):
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    assert provider.settle(claim) is True

    assert provider.cancel_job("fermions", job_id) is CancelOutcome.TOO_LATE

    assert provider.finish(claim, {**RESULT, "job_id": job_id}, "Done.") is True
    assert provider.get_status("fermions", job_id)["status"] == "DONE"
    assert provider.cancel_job("fermions", job_id) is CancelOutcome.TOO_LATE


@pytest.mark.parametrize("end", ["finish", "fail"])
def test_a_job_ended_by_a_spooler_that_knows_no_cancelling_is_too_late(provider, end):
    """sqooler writes no ending record: the status says the job is over."""
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    if end == "finish":
        provider.finish(claim, {**RESULT, "job_id": job_id}, "Done.")
    else:
        provider.fail(claim, "refused")

    assert provider.cancel_job("fermions", job_id) is CancelOutcome.TOO_LATE

    assert provider.list_ids(Place.ENDINGS) == []  # its request is not left behind


def test_a_running_job_of_a_spooler_that_knows_no_cancelling_runs_to_its_end(provider):
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="sqooler")
    assert provider.cancel_job("fermions", job_id) is CancelOutcome.CANCELLING

    assert provider.finish(claim, {**RESULT, "job_id": job_id}, "Done.") is True

    assert provider.get_status("fermions", job_id)["status"] == "DONE"
    assert provider.cancel_job("fermions", job_id) is CancelOutcome.CANCELLING  # its record


def test_a_job_storage_does_not_know_is_not_found_and_leaves_no_record(provider):
    job_id = provider.new_job_id("fermions", "alice")

    with pytest.raises(NotFound):
        provider.cancel_job("fermions", job_id)

    assert provider.list_ids(Place.ENDINGS) == []


def test_a_cancelled_job_whose_spooler_died_is_cancelled_by_the_reaper(provider):
    job_id = submit(provider)
    provider.claim_next("fermions", owner="s1")
    provider.cancel_job("fermions", job_id)

    assert expire(provider) == [job_id]

    assert queue(provider) == []
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.LEASES) == []
    assert provider.get_status("fermions", job_id) == cancelled(job_id)


def test_a_settled_job_whose_spooler_died_runs_again_and_can_be_cancelled(provider):
    job_id = submit(provider)
    provider.settle(provider.claim_next("fermions", owner="s1"))  # then the spooler dies

    assert expire(provider) == [job_id]

    assert queue(provider) == [job_id]
    assert provider.list_ids(Place.ENDINGS) == []
    assert provider.cancel_job("fermions", job_id) is CancelOutcome.CANCELLED


def test_a_spooler_settling_a_job_a_dead_run_settled_takes_it_over(provider):
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    provider.write(Ref(Place.ENDINGS, job_id), {"by": "spooler", "owner": "dead"})

    assert provider.settle(claim) is True
    assert provider.read(Ref(Place.ENDINGS, job_id))["owner"] == "s1"


# ---- the race -------------------------------------------------------------------------------


def race_once(
    provider: StorageProvider, spooler: StorageProvider, api: StorageProvider, *, claimed: bool
) -> str:
    """Post a job, then release a spooler's claim-and-run (or, when `claimed`, the end of a
    run it claimed already) and an owner's cancel at once."""
    job_id = submit(provider)
    start = threading.Barrier(2)
    seen: dict[str, object] = {"ran": False}
    held = spooler.claim_next("fermions", owner="s1") if claimed else None

    def spool() -> None:
        start.wait()
        claim = held or spooler.claim_next("fermions", owner="s1")
        if claim is None:
            return
        if spooler.settle(claim):
            seen["ran"] = spooler.finish(claim, {**RESULT, "job_id": claim.job_id}, "Done.")
        else:
            assert spooler.stop_cancelled(claim)

    def cancel() -> None:
        start.wait()
        seen["cancel"] = api.cancel_job("fermions", job_id)

    threads = [threading.Thread(target=spool), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    final = provider.get_status("fermions", job_id)
    has_result = result_of(provider, job_id) is not None
    if seen["cancel"] is CancelOutcome.TOO_LATE:
        assert (final["status"], has_result, seen["ran"]) == ("DONE", True, True)
    else:  # cancelled in the queue, or stopped by its spooler: never run to a result
        assert (final, has_result, seen["ran"]) == (cancelled(job_id), False, False)
        assert provider.read(Ref(Place.DELETED, job_id)) == JOB
    assert provider.list_ids(Place.RUNNING) == []
    assert queue(provider) == []
    assert provider.list_ids(Place.LEASES) == []
    return str(seen["cancel"])


@pytest.mark.parametrize("claimed", [False, True], ids=["claim", "settle"])
def test_a_cancel_racing_a_spooler_never_ends_with_both_a_result_and_a_cancellation(
    make_provider, provider, claimed
):
    spooler, api = make_provider(), make_provider()

    outcomes = Counter(race_once(provider, spooler, api, claimed=claimed) for _ in range(RACES))

    assert sum(outcomes.values()) == RACES
    assert set(outcomes) <= {str(outcome) for outcome in CancelOutcome}


# ---- where jobs stand -----------------------------------------------------------------------


def counting(provider: StorageProvider, names: tuple[str, ...] = ("_read_many", "_list_ids")):  # type: ignore[no-untyped-def]
    """The calls `provider` makes of the medium's listing and reading primitives, in order.

    `_read_many` is one query on MongoDB, eight downloads at a time on Dropbox, and
    file reads (no round trips) on a local disk.
    """
    calls: list[str] = []
    for name in names:
        original = getattr(provider, name)

        def noting(*args, _name=name, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _original(*args, **kwargs)

        setattr(provider, name, noting)
    return calls


def test_sightings_say_queued_running_done_and_error_with_the_spoolers_times(provider):
    done_id, error_id, running_id = ids_by_age(provider)
    queued_id = provider.new_job_id("fermions", "alice")
    for job_id in (done_id, error_id, running_id):
        submit(provider, job_id)
    before = utcnow()
    run_to_end(provider)
    claim = provider.claim_next("fermions", owner="s1")
    assert provider.settle(claim)
    provider.fail(claim, "refused")
    provider.claim_next("fermions", owner="s1")
    submit(provider, queued_id)
    ids = [done_id, error_id, running_id, queued_id]

    seen = provider.sightings("fermions", ids, unstarted={running_id})

    assert {i: s.state for i, s in seen.items()} == {
        done_id: "DONE",
        error_id: "ERROR",
        running_id: "RUNNING",
        queued_id: "QUEUED",
    }
    assert seen[error_id].detail == "refused"
    for job_id in (done_id, error_id):
        assert before <= seen[job_id].started_at <= seen[job_id].finished_at <= utcnow()
    assert before <= seen[running_id].started_at <= utcnow()
    assert seen[running_id].finished_at is None
    assert seen[queued_id].started_at is None


def test_sightings_cost_the_same_round_trips_for_three_jobs_as_for_thirty(make_provider):
    def cost(count: int, display: str) -> list[str]:
        provider = make_provider()
        provider.upload_config(display, {**FERMIONS_CONFIG, "display_name": display})
        ids = [submit(provider, display=display) for _ in range(count)]
        for _ in range(count // 3):
            run_to_end(provider, display)
        for _ in range(count // 3):
            provider.claim_next(display, owner="s1")
        calls = counting(provider)
        seen = provider.sightings(display, ids, unstarted=ids)
        assert sorted(s.state for s in seen.values()) == sorted(
            ["DONE"] * (count // 3) + ["RUNNING"] * (count // 3) + ["QUEUED"] * (count // 3)
        )
        return calls

    assert (
        cost(3, "few")
        == cost(30, "many")
        == ["_list_ids", "_list_ids", "_read_many", "_read_many", "_read_many"]
    )


def test_sightings_leave_out_a_job_found_nowhere(provider):
    missing = provider.new_job_id("fermions", "alice")

    assert provider.sightings("fermions", [missing]) == {}


def test_listings_are_kept_for_max_age_seconds(provider):
    job_id = submit(provider)
    provider.sightings("fermions", [job_id], max_age=60)
    calls = counting(provider, ("_read", "_read_many", "_list_ids"))

    assert provider.sightings("fermions", [job_id], max_age=60)[job_id].state == "QUEUED"
    assert calls == []


def test_a_queue_position_counts_from_the_job_taken_next(provider):
    oldest, middle, newest = ids_by_age(provider)
    for job_id in (newest, oldest, middle):
        submit(provider, job_id)

    positions = [provider.queue_position("fermions", i) for i in (oldest, middle, newest)]

    assert positions == [1, 2, 3]
    provider.claim_next("fermions", owner="s1")
    assert provider.queue_position("fermions", oldest) is None
    assert provider.queue_position("fermions", newest) == 2
