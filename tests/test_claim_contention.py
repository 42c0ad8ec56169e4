"""Several spooler processes claiming from one queue at once (SPEC §7: claims are atomic).

On local storage and on MongoDB: each process builds its own provider (its own
client), as separate spoolers do.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import pytest

from storage_providers import LocalProvider, Place, Ref, build_provider
from tests.conftest import FERMIONS_CONFIG

JOBS = 300
PROCESSES = 4
JOB = {"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1, "wire_order": "sequential"}}


def claim_all(medium: str, login: dict, owner: str, finish: bool, start, results) -> None:  # type: ignore[no-untyped-def]
    """A spooler process: claim (and maybe finish) until the queue is empty."""
    provider = build_provider(medium, "alqor", login)
    claimed = []
    start.wait()
    while (claim := provider.claim_next("fermions", owner=owner)) is not None:
        claimed.append(claim.job_id)
        if finish:
            result = {"job_id": claim.job_id, "owner": owner, "results": []}
            assert provider.finish(claim, result, f"run by {owner}")
    results.put((owner, claimed))


@pytest.fixture(params=["local", "mongodb"])
def queue_of_jobs(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A queue of JOBS jobs on the medium under test, and how to reach it."""
    medium = request.param
    if medium == "mongodb":
        login = request.getfixturevalue("mongo").login()
    else:
        login = {"base_path": str(tmp_path / "store")}
    provider = build_provider(medium, "alqor", login)
    provider.upload_config("fermions", dict(FERMIONS_CONFIG))
    ids = [provider.new_job_id("fermions", "alice") for _ in range(JOBS)]
    for job_id in ids:
        provider.write(Ref(Place.QUEUED, job_id, "fermions"), JOB)
    provider.close()  # no client may cross the fork
    yield provider, ids, (medium, login)
    provider.close()


def race(where: tuple[str, dict], *, finish: bool) -> dict[str, list[str]]:
    """Run PROCESSES claimers released at the same instant; what each one claimed."""
    context = multiprocessing.get_context("fork")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=claim_all, args=(*where, f"spooler-{n}", finish, start, results))
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    claimed = dict(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return claimed


def test_each_job_is_claimed_exactly_once_none_lost_none_left(queue_of_jobs):
    provider, ids, where = queue_of_jobs

    claimed = race(where, finish=False)

    assert sum(1 for jobs in claimed.values() if jobs) >= 2  # they really raced
    every_claim = [job_id for jobs in claimed.values() for job_id in jobs]
    assert Counter(every_claim).most_common(1)[0][1] == 1
    assert sorted(every_claim) == sorted(ids)
    assert provider.list_ids(Place.QUEUED, "fermions") == []
    assert sorted(provider.list_ids(Place.RUNNING)) == sorted(ids)
    for owner, jobs in claimed.items():
        assert jobs == sorted(jobs)  # each claimer takes the oldest job it can get
        for job_id in jobs:  # and every lease names the one process that claimed the job
            lease = provider.read(Ref(Place.LEASES, job_id))
            assert (lease["owner"], lease["attempts"]) == (owner, 1)


def test_racing_spoolers_run_each_job_once_to_done(queue_of_jobs):
    provider, ids, where = queue_of_jobs

    claimed = race(where, finish=True)

    owner_of = {job_id: owner for owner, jobs in claimed.items() for job_id in jobs}
    assert sorted(owner_of) == sorted(ids)
    assert sum(len(jobs) for jobs in claimed.values()) == JOBS
    for job_id in ids:
        status = provider.get_status("fermions", job_id)
        result = provider.get_result("fermions", job_id)
        assert (status["status"], status["detail"]) == ("DONE", f"run by {owner_of[job_id]}")
        assert result["owner"] == owner_of[job_id]
    assert sorted(provider.list_ids(Place.FINISHED, "fermions")) == sorted(ids)
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.LEASES) == []
    if isinstance(provider, LocalProvider):  # no temporary file left behind
        base = provider.base_path
        assert [p.name for p in base.rglob("*") if p.is_file() and p.suffix != ".json"] == []
