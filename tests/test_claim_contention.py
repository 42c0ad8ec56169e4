"""Several spooler processes claiming from one local queue at once (SPEC §7: claims are atomic)."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from pathlib import Path

import pytest

from storage_providers import LocalProvider, Place
from tests.conftest import FERMIONS_CONFIG

JOBS = 300
PROCESSES = 4
JOB = {"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1, "wire_order": "sequential"}}


def claim_all(base_path: str, owner: str, finish: bool, start, results) -> None:  # type: ignore[no-untyped-def]
    """A spooler process: claim (and maybe finish) until the queue is empty."""
    provider = LocalProvider("alqor", base_path)
    claimed = []
    start.wait()
    while (claim := provider.claim_next("fermions", owner=owner)) is not None:
        claimed.append(claim.job_id)
        if finish:
            result = {"job_id": claim.job_id, "owner": owner, "results": []}
            assert provider.finish(claim, result, f"run by {owner}")
    results.put((owner, claimed))


@pytest.fixture
def queue_of_jobs(tmp_path: Path) -> tuple[LocalProvider, list[str]]:
    """A queue of JOBS jobs, laid out as SPEC §6 says (plain files: quick to make)."""
    provider = LocalProvider("alqor", tmp_path / "store")
    provider.upload_config("fermions", dict(FERMIONS_CONFIG))
    queue = provider.base_path / "jobs/queued/fermions"
    queue.mkdir(parents=True)
    ids = [provider.new_job_id("fermions", "alice") for _ in range(JOBS)]
    for job_id in ids:
        (queue / f"{job_id}.json").write_text(json.dumps(JOB))
    return provider, ids


def race(base_path: Path, *, finish: bool) -> dict[str, list[str]]:
    """Run PROCESSES claimers released at the same instant; what each one claimed."""
    context = multiprocessing.get_context("fork")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(
            target=claim_all, args=(str(base_path), f"spooler-{n}", finish, start, results)
        )
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
    provider, ids = queue_of_jobs

    claimed = race(provider.base_path, finish=False)

    assert sum(1 for jobs in claimed.values() if jobs) >= 2  # they really raced
    every_claim = [job_id for jobs in claimed.values() for job_id in jobs]
    assert Counter(every_claim).most_common(1)[0][1] == 1
    assert sorted(every_claim) == sorted(ids)
    assert provider.list_ids(Place.QUEUED, "fermions") == []
    assert sorted(provider.list_ids(Place.RUNNING)) == sorted(ids)
    for owner, jobs in claimed.items():
        assert jobs == sorted(jobs)  # each claimer takes the oldest job it can get
        for job_id in jobs:  # and every lease names the one process that claimed the job
            lease = json.loads((provider.base_path / f"jobs/leases/{job_id}.json").read_text())
            assert (lease["owner"], lease["attempts"]) == (owner, 1)


def test_racing_spoolers_run_each_job_once_to_done(queue_of_jobs):
    provider, ids = queue_of_jobs

    claimed = race(provider.base_path, finish=True)

    owner_of = {job_id: owner for owner, jobs in claimed.items() for job_id in jobs}
    assert sorted(owner_of) == sorted(ids)
    assert sum(len(jobs) for jobs in claimed.values()) == JOBS
    base = provider.base_path
    for job_id in ids:
        status = provider.get_status("fermions", job_id)
        result = provider.get_result("fermions", job_id)
        assert (status["status"], status["detail"]) == ("DONE", f"run by {owner_of[job_id]}")
        assert result["owner"] == owner_of[job_id]
    assert sorted(provider.list_ids(Place.FINISHED, "fermions")) == sorted(ids)
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.LEASES) == []
    assert [p.name for p in base.rglob("*") if p.is_file() and p.suffix != ".json"] == []
