"""Spooler benchmark: jobs per second through one and two spoolers, and post_job to DONE.

    .venv/bin/python bench/spooler_bench.py [--jobs 2000] [--latency-jobs 100]

Every job is the trivial one: one experiment on singlequdit, `load` 1 atom,
`measure`, 1 shot.

Throughput: the jobs are written through the storage layer exactly as post_job
writes them (LocalProvider.submit_job: status, then queue) into a staging folder.
Once the `python -m spooler` processes are up and idle, the status and queue
folders are renamed into place (atomic, status first), and the clock runs until
every job is in the finished folder and its lease is released.

Latency: one spooler beside the API (gunicorn, 2 sync workers, DEBUG off). Jobs
are posted one at a time over HTTP at a modest rate, and get_job_status is polled
every 10 ms until it says DONE, which is what a user sees.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from harness import (
    BenchError,
    Scratch,
    add_workdir_option,
    cpu_seconds,
    guarded,
    json_ids,
    machine_busy_seconds,
    percentile,
    raise_on_sigterm,
    read_json,
    say,
    session_cpu_seconds,
)

from storage_providers import LocalProvider
from storage_providers.schemas import check_job

DISPLAY = "singlequdit"
BACKEND = f"alqor_{DISPLAY}_simulator"
JOB = {
    "experiment_0": {
        "instructions": [["load", [0], [1]], ["measure", [0], []]],
        "num_wires": 1,
        "shots": 1,
    }
}
RATE_TARGET = 200.0  # jobs/s through one spooler
P50_TARGET = 0.3  # s from post_job to DONE
WARMUP = 5  # latency samples run first and left out (first requests per worker)


class Others:
    """CPU taken by processes outside this benchmark while it measures (0 on a quiet machine)."""

    def __init__(self, scratch: Scratch) -> None:
        self.scratch = scratch
        self.started = self._reading()

    def _reading(self) -> tuple[float, float, float]:
        ours = session_cpu_seconds(self.scratch.sessions) + cpu_seconds(os.getpid())
        return time.monotonic(), machine_busy_seconds(), ours

    def share(self) -> float:
        """Percent of all CPUs that others used since this meter started."""
        wall, busy, ours = (a - b for a, b in zip(self._reading(), self.started, strict=True))
        return max(0.0, 100 * (busy - ours) / (os.cpu_count() or 1) / wall) if wall else 0.0


@dataclass
class Throughput:
    spoolers: int
    jobs: int
    seconds: float
    done: int
    failed: int
    others: float

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_on_sigterm()

    def body() -> int:
        with Scratch("qlued_spooler_bench_", options.workdir) as scratch:
            runs = [throughput(scratch, n, options.jobs, options.timeout) for n in (1, 2)]
            samples, busy = latency(scratch, options.latency_jobs, options.poll)
        return 0 if report(runs, samples, busy, options) else 1

    return guarded(body)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs queued per throughput run")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per throughput run")
    parser.add_argument("--latency-jobs", type=int, default=100, help="jobs posted one by one")
    parser.add_argument("--poll", type=float, default=0.01, help="get_job_status interval (s)")
    add_workdir_option(parser)
    return parser.parse_args(argv)


# ---- throughput ------------------------------------------------------------------


def fill(staging: Path, jobs: int) -> None:
    """Queue `jobs` trivial jobs as post_job does (the job checked, status, then queue)."""
    provider = LocalProvider("alqor", staging)
    job = check_job(json.loads(json.dumps(JOB)), "sequential")
    for _ in range(jobs):
        provider.submit_job(DISPLAY, provider.new_job_id(DISPLAY, ""), job)


# The folders a run's staging tree is released into, in post_job's order: statuses
# first, the queue last (what is not staged is left out).
RELEASE = ("status", "results", "jobs/finished", "jobs/queued")


def throughput(
    scratch: Scratch,
    spoolers: int,
    jobs: int,
    timeout: float,
    *,
    seed: Callable[[Path], object] | None = None,
    tag: str = "",
) -> Throughput:
    """Time `spoolers` spoolers through `jobs` jobs that appear in the queue all at once.

    `seed` may put more documents of the backend into the staging tree first (jobs
    already finished, jobs already queued): they are released with the rest, and
    the spoolers run every queued job.
    """
    base, staging = scratch.dir / f"run{spoolers}{tag}", scratch.dir / f"staging{spoolers}{tag}"
    if seed is not None:
        seed(staging)
    say(f"queueing {jobs} jobs for {spoolers} spooler(s)")
    fill(staging, jobs)
    queued = json_ids(staging / "jobs/queued" / DISPLAY)
    procs = [scratch.spooler(f"spooler{spoolers}{tag}-{i}", DISPLAY, base) for i in range(spoolers)]
    for proc in procs:
        scratch.wait_log(proc, "serving ")
    say(f"{spoolers} spooler(s) idle; releasing the queue")
    others = Others(scratch)
    for place in RELEASE:
        source, target = staging / place / DISPLAY, base / place / DISPLAY
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
    seconds = wait_drained(base, len(queued), timeout, procs, scratch)  # the clock starts now
    busy = others.share()
    for proc in procs:
        scratch.stop(proc)
    status = base / "status" / DISPLAY
    statuses = [read_json(status / f"{job_id}.json").get("status") for job_id in queued]
    done, failed = statuses.count("DONE"), statuses.count("ERROR")
    say(f"  {done} DONE, {failed} ERROR in {seconds:.2f} s")
    return Throughput(spoolers, len(queued), seconds, done, failed, busy)


def wait_drained(
    base: Path, jobs: int, timeout: float, procs: list[subprocess.Popen], scratch: Scratch
) -> float:
    """Seconds until no job is queued or running and no lease is left; capped.

    The finished folder is never listed: it may hold far more than this run's jobs.
    """
    queue, running, leases = (
        base / "jobs/queued" / DISPLAY,
        base / "jobs/running",
        base / "jobs/leases",
    )
    started = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - started
        if not any(holds_json(folder) for folder in (queue, running, leases)):
            return elapsed
        if elapsed > timeout:
            left = len(json_ids(queue)) + len(json_ids(running))
            say(f"  timed out: {jobs - left} of {jobs} jobs through")
            return elapsed
        for proc in procs:
            if proc.poll() is not None:
                raise BenchError(f"a spooler exited:\n{scratch.tail(proc)}")
        time.sleep(0.01)


def holds_json(folder: Path) -> bool:
    """Whether a folder holds a `*.json` document; stops at the first (a queue is long)."""
    try:
        with os.scandir(folder) as entries:
            return any(e.name.endswith(".json") for e in entries)
    except FileNotFoundError:
        return False


# ---- latency ---------------------------------------------------------------------


def latency(scratch: Scratch, count: int, poll: float) -> tuple[list[float], float]:
    """Seconds from sending post_job to reading DONE, for `count` jobs posted one by one."""
    say("setting up the API for the latency run")
    token = scratch.install()
    api = scratch.serve("api", "qlued.settings")
    scratch.wait_http(f"{api.base}/api/v2/backends", api.proc)
    spooler = scratch.spooler("spooler-latency", DISPLAY)
    scratch.wait_log(spooler, "serving ")
    url = f"{api.base}/api/v2/{BACKEND}"
    body = {"job": json.dumps(JOB), "token": token}
    pace = random.Random(7)  # a fixed, modest, irregular rate: 5 to 15 posts a second at most
    samples = []
    say(f"posting {WARMUP} + {count} jobs one at a time, polling every {poll * 1000:.0f} ms")
    with requests.Session() as http:
        for _ in range(WARMUP):
            samples.append(one_job(http, url, body, token, poll))
        others = Others(scratch)
        for _ in range(count):
            time.sleep(pace.uniform(0.05, 0.15))
            samples.append(one_job(http, url, body, token, poll))
    busy = others.share()
    scratch.stop(spooler)
    return samples[WARMUP:], busy


def one_job(http: requests.Session, url: str, body: dict, token: str, poll: float) -> float:
    started = time.perf_counter()
    answer = http.post(f"{url}/post_job", json=body, timeout=10)
    if answer.status_code != 200:
        raise BenchError(f"post_job answered {answer.status_code}: {answer.text[:300]}")
    job_id = answer.json()["job_id"]
    while time.perf_counter() - started < 10:
        time.sleep(poll)
        query = {"job_id": job_id, "token": token}
        status = http.get(f"{url}/get_job_status", params=query, timeout=10).json()["status"]
        if status == "DONE":
            return time.perf_counter() - started
        if status == "ERROR":
            raise BenchError(f"job {job_id} failed")
    raise BenchError(f"job {job_id} was not DONE within 10 s")


# ---- report ----------------------------------------------------------------------


def report(
    runs: list[Throughput], samples: list[float], busy: float, options: argparse.Namespace
) -> bool:
    """The two tables; True when both targets (one spooler's rate, the p50) were met."""
    met = True
    print()
    print(
        f"spooler throughput: {options.jobs} trivial singlequdit jobs queued at once, local storage"
    )
    print()
    head = f"{'spoolers':<10}{'done':>6}{'failed':>8}{'seconds':>9}{'jobs/s':>9}{'target':>9}"
    print(f"{head}  {'result':<14}{'others':>7}")
    one = runs[0].rate
    for run in runs:
        complete = run.done == run.jobs and run.failed == 0
        if run.spoolers == 1:
            goal = f">= {RATE_TARGET:.0f}"
            verdict = "pass" if run.rate >= RATE_TARGET and complete else "FAIL"
            met = met and verdict == "pass"
        else:
            goal, verdict = "", f"x{run.rate / one:.2f} of one" if one else ""
        print(
            f"{run.spoolers:<10}{run.done:>6}{run.failed:>8}{run.seconds:>9.2f}{run.rate:>9.1f}"
            f"{goal:>9}  {verdict:<14}{run.others:>6.0f}%"
        )
    print()
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    verdict = "pass" if p50 <= P50_TARGET else "FAIL"
    met = met and verdict == "pass"
    print(
        f"post_job -> DONE over HTTP: {len(samples)} jobs one at a time, 1 spooler, "
        f"gunicorn 2 workers, get_job_status every {options.poll * 1000:.0f} ms"
    )
    print()
    head = f"{'p50 s':>8}{'p99 s':>8}{'max s':>8}{'mean s':>8}{'target':>13}"
    print(f"{head}  {'result':<7}{'others':>7}")
    mean = sum(samples) / len(samples)
    print(
        f"{p50:>8.3f}{p99:>8.3f}{max(samples):>8.3f}{mean:>8.3f}"
        f"{'p50 <= ' + format(P50_TARGET, '.1f'):>13}  {verdict:<7}{busy:>6.0f}%"
    )
    print()
    print(
        "others: share of all CPUs taken by processes outside this benchmark while it\n"
        "measured (0% on a quiet machine; the storage is also shared with them)."
    )
    return met


if __name__ == "__main__":
    sys.exit(main())
