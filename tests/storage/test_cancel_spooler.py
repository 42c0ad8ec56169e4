"""The built-in spooler and cancelled jobs, on every medium (issue 14).

It never runs a job cancelled in the queue, stops a running one between experiments,
and lets a cancel that comes after the last experiment win at the end all the same.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from spooler.simulators.spins import SpinBackend, spin_gates
from spooler.worker import Spooler, SpoolerOptions
from storage_providers import (
    CANCEL_DETAIL,
    CancelOutcome,
    NotFound,
    Place,
    Ref,
    StorageProvider,
)
from storage_providers.schemas import utcnow

EXPERIMENT = {
    "instructions": [["load", [0], [3]], ["rlx", [0], [math.pi]], ["measure", [0], []]],
    "num_wires": 1,
    "shots": 2,
    "wire_order": "sequential",
}
THREE_EXPERIMENTS = {f"experiment_{n}": EXPERIMENT for n in range(3)}


class Watched(SpinBackend):
    """The singlequdit simulator, calling `during(n)` as it runs its n-th experiment."""

    def __init__(self, during: Any = None) -> None:
        super().__init__(display_name="spins", description="", num_wires=1, gates=spin_gates(1))
        self.ran: list[str] = []
        self.during = during or (lambda n: None)

    def distribution(self, circuit: Any) -> Any:
        self.ran.append(circuit.name)
        self.during(len(self.ran))
        return super().distribution(circuit)


@pytest.fixture
def lab(make_provider) -> StorageProvider:  # type: ignore[no-untyped-def]
    """The API's side of the storage."""
    return make_provider()


@pytest.fixture
def make_spooler(make_provider):  # type: ignore[no-untyped-def]
    def make(backend: Watched, **options: Any) -> Spooler:
        spooler = Spooler(make_provider(), [backend], options=SpoolerOptions(**options))
        spooler.announce()
        return spooler

    return make


def submit(lab: StorageProvider, job: dict = THREE_EXPERIMENTS) -> str:
    job_id = lab.new_job_id("spins", "alice")
    lab.submit_job("spins", job_id, job)
    return job_id


def cancelled(job_id: str) -> dict:
    return {
        "job_id": job_id,
        "status": "ERROR",
        "detail": CANCEL_DETAIL,
        "error_message": CANCEL_DETAIL,
    }


def has_result(lab: StorageProvider, job_id: str) -> bool:
    try:
        lab.get_result("spins", job_id, username="alice")
    except NotFound:
        return False
    return True


def test_a_job_cancelled_in_the_queue_is_never_run(make_spooler, lab):
    backend = Watched()
    spooler = make_spooler(backend, cancel_check_every=0)
    job_id = submit(lab)

    assert lab.cancel_job("spins", job_id) is CancelOutcome.CANCELLED

    assert spooler.step() is False
    assert backend.ran == []
    assert lab.get_status("spins", job_id) == cancelled(job_id)


def test_a_running_job_is_stopped_between_experiments(make_spooler, lab, caplog):
    job_id = ""

    def cancel_during_the_first(n: int) -> None:
        if n == 1:
            assert lab.cancel_job("spins", job_id) is CancelOutcome.CANCELLING

    backend = Watched(cancel_during_the_first)
    spooler = make_spooler(backend, cancel_check_every=0)
    job_id = submit(lab)

    with caplog.at_level(logging.INFO, logger="spooler"):
        assert spooler.step() is True

    assert backend.ran == ["experiment_0"]  # the other two never ran
    assert lab.get_status("spins", job_id) == cancelled(job_id)
    assert not has_result(lab, job_id)
    assert lab.read(Ref(Place.DELETED, job_id)) == THREE_EXPERIMENTS
    assert lab.list_ids(Place.RUNNING) == []
    assert lab.list_ids(Place.LEASES) == []
    assert any(job_id in r.getMessage() and "CANCELLED" in r.getMessage() for r in caplog.records)


def test_a_cancel_after_the_last_check_still_wins_at_the_end(make_spooler, lab):
    job_id = ""

    def cancel_during_the_last(n: int) -> None:
        if n == 3:
            lab.cancel_job("spins", job_id)

    backend = Watched(cancel_during_the_last)
    spooler = make_spooler(backend, cancel_check_every=10**9)  # never asks between experiments
    job_id = submit(lab)

    assert spooler.step() is True

    assert len(backend.ran) == 3
    assert lab.get_status("spins", job_id) == cancelled(job_id)
    assert not has_result(lab, job_id)


def test_a_spooler_goes_on_with_the_next_job_after_a_cancelled_one(make_spooler, lab):
    first = ""

    def cancel_the_first(n: int) -> None:
        if n == 1:
            lab.cancel_job("spins", first)

    backend = Watched(cancel_the_first)
    spooler = make_spooler(backend, cancel_check_every=0)
    first = submit(lab)
    assert spooler.step() is True
    second = submit(lab, {"experiment_0": EXPERIMENT})

    assert [spooler.step(), spooler.step()] == [True, False]

    assert lab.get_status("spins", first) == cancelled(first)
    assert lab.get_status("spins", second)["status"] == "DONE"
    assert has_result(lab, second)


def test_a_job_the_spooler_settled_is_too_late_to_cancel_and_ends_done(make_spooler, lab):
    job_id = submit(lab, {"experiment_0": EXPERIMENT})
    spooler = make_spooler(Watched())
    provider = spooler.provider
    claim = provider.claim_next("spins", owner=spooler.owner)
    assert provider.settle(claim)

    assert lab.cancel_job("spins", job_id) is CancelOutcome.TOO_LATE


def test_the_spooler_records_when_a_job_started_and_ended(make_spooler, lab):
    before = utcnow()
    job_id = submit(lab, {"experiment_0": EXPERIMENT})

    assert make_spooler(Watched()).step() is True

    seen = lab.sightings("spins", [job_id])[job_id]
    assert seen.state == "DONE"
    assert before <= seen.started_at <= seen.finished_at <= utcnow()
