"""Flat as storage grows: the job endpoints and a spooler on empty, then on full storage.

    .venv/bin/python bench/grow_bench.py [--fill 100000,2000] [--storage local|mongodb|both]
        [--duration 8] [--jobs 2000] [--skip-spooler]

The API part reuses bench/api_bench.py: one scratch install per storage (gunicorn, 2
sync workers, SQLite, the local provider or secantusdb) and one floor. Each install
is loaded twice back to back, first with one finished job in its storage, then after
`--fill` has written FINISHED more finished jobs (status DONE, result, job in the
finished folder) and QUEUED queued ones (initial status, job in the queue) of the
benchmark's backend, with their ledger rows. The documents are written straight into
the provider's layout (files without fsync, MongoDB `insert_many`), since 100,000
posts over HTTP would take longer than the benchmark; then the fill is left to come
to rest (`sync`, and the database server idle: see `settle`). Each run loads get_job_status
and get_job_result of one finished job (on the full run, one from the middle of the
fill), post_job, and the floor, which shows how much the machine drifted meanwhile.

The spooler part reuses bench/spooler_bench.py: one spooler through `--jobs` trivial
jobs released into an empty local storage, then through the same number released
into one that holds FINISHED finished jobs and QUEUED more queued ones (which it
runs too: the queue starts at QUEUED + jobs).

The verdict is the ratio full / empty >= 0.8 of req/s (jobs/s). The machine may be
shared: when other processes took more than 10% of the CPUs during either run of an
endpoint, its req/s are noise, and the CPU its serving processes spent per request
(empty over full) judges instead, marked `(cpu)`. Exit status 1 when a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import api_bench
import spooler_bench
from api_bench import DISPLAY, OWNER, Load, Site, Window, cpu_ms, job_check, jobs_verified
from harness import (
    DRIVER,
    BenchError,
    Scratch,
    Server,
    add_workdir_option,
    cpu_seconds,
    guarded,
    raise_on_sigterm,
    say,
)

from storage_providers.base import PER_BACKEND, Place
from storage_providers.local import FOLDERS
from storage_providers.mongodb import COLLECTIONS
from storage_providers.names import new_object_id
from storage_providers.schemas import Document, initial_status, status_msg

TARGET = 0.8  # full / empty
BUSY_WARNING = api_bench.BUSY_WARNING
READS = ("get_job_status", "get_job_result")
BATCH = 5000  # documents per insert_many, rows per executemany
SETTLE_SECONDS = 60.0  # at most, after a fill (settle)
# The spooler's line for each job it has ended (spooler/worker.py, `_execute`).
ENDED = re.compile(rf" job [0-9a-f]{{24}} {spooler_bench.DISPLAY} (\w+) ")


@dataclass
class Fill:
    finished: int
    queued: int


@dataclass
class Row:
    """One endpoint (or the spooler) on empty and on full storage."""

    name: str
    empty: float
    full: float
    empty_cpu: float | None = None  # ms per request
    full_cpu: float | None = None
    others: float = 0.0  # the larger share of the CPUs others took, of the two runs
    judged: bool = True  # a row with a target
    sound: bool = True  # what the row needs besides its rate (post_job: every job stored)

    @property
    def ratio(self) -> float:
        return self.full / self.empty if self.empty else 0.0

    @property
    def cpu_ratio(self) -> float | None:
        if not self.empty_cpu or not self.full_cpu:
            return None
        return self.empty_cpu / self.full_cpu

    def verdict(self) -> str:
        if not self.judged:
            return ""
        if not self.sound:
            return "FAIL"
        if self.ratio >= TARGET:
            return "pass"
        noisy = self.others > BUSY_WARNING and self.cpu_ratio is not None
        if noisy and self.cpu_ratio is not None and self.cpu_ratio >= TARGET:
            return "pass (cpu)"
        return "FAIL"


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_on_sigterm()
    if not DRIVER.exists() or shutil.which("wrk") is None:
        print(f"error: needs wrk and the shared driver {DRIVER}", file=sys.stderr)
        return 2
    tables: list[tuple[str, list[Row]]] = []
    sites: list[Site] = []

    def body() -> int:
        with Scratch("qlued_grow_bench_", options.workdir) as scratch:
            try:
                tables.extend(api_tables(scratch, options, sites))
                if not options.skip_spooler:
                    tables.append(spooler_table(scratch, options))
                    mongo = [s for s in sites if isinstance(s.medium, api_bench.MongoMedium)]
                    tables.extend(mongo_spooler_table(scratch, site, options) for site in mongo)
            finally:
                for site in sites:
                    site.medium.close()
            return report(tables, options)  # before the teardown, which takes a while

    return guarded(body)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fill",
        type=parse_fill,
        default=Fill(100_000, 2_000),
        metavar="FINISHED,QUEUED",
        help="jobs written into storage before the full runs (default: 100000,2000)",
    )
    parser.add_argument("--storage", choices=[*api_bench.STORAGES, "both"], default="both")
    parser.add_argument("--duration", type=int, default=8, help="seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per spooler run")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per spooler run")
    parser.add_argument("--skip-spooler", action="store_true", help="the API part only")
    api_bench.add_retry_writes_option(parser)
    add_workdir_option(parser)
    options = parser.parse_args(argv)
    both = options.storage == "both"
    options.storages = list(api_bench.STORAGES) if both else [options.storage]
    return options


def parse_fill(text: str) -> Fill:
    try:
        finished, queued = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected FINISHED,QUEUED, e.g. 100000,2000") from None
    if finished < 1 or queued < 0:
        raise argparse.ArgumentTypeError("FINISHED must be at least 1, QUEUED at least 0")
    return Fill(finished, queued)


# ---- the documents of a job, as post_job and the spooler write them ----------------


def job_document() -> Document:
    """The driver's fermions job, as post_job stores it."""
    from storage_providers.schemas import check_job

    job = json.loads(json.dumps(load_driver_job()))
    return check_job(job, "interleaved")


def load_driver_job() -> Document:
    sys.path.insert(0, str(DRIVER.parent))
    try:
        from qlued_bench import JOB_PAYLOAD  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DRIVER.parent))
    return dict(JOB_PAYLOAD)


def result_document(job_id: str) -> Document:
    return {
        "backend_name": f"alqor_{DISPLAY}_simulator",
        "display_name": DISPLAY,
        "backend_version": "0.0.1",
        "job_id": job_id,
        "qobj_id": None,
        "success": True,
        "status": "DONE",
        "header": {},
        "results": [
            {
                "header": {"name": "experiment_0"},
                "shots": 4,
                "success": True,
                "data": {"memory": ["0 0 1 0 0 0 0 1"] * 4, "counts": {"0 0 1 0 0 0 0 1": 4}},
            }
        ],
    }


def finished_documents(job_id: str, job: Document) -> Iterator[tuple[Place, Document]]:
    """A job the spooler has run: its result, the job in `finished`, the status DONE."""
    yield Place.RESULTS, result_document(job_id)
    yield Place.FINISHED, job
    yield Place.STATUS, status_msg(job_id, "DONE", "Done.")


def queued_documents(job_id: str, job: Document) -> Iterator[tuple[Place, Document]]:
    """A job post_job has queued: its initial status, then the job in the queue."""
    yield Place.STATUS, initial_status(job_id)
    yield Place.QUEUED, job


# ---- writing them straight into a medium --------------------------------------------


class LocalSeeder:
    """Files in the local provider's folders (storage_providers.local.FOLDERS), unsynced."""

    def __init__(self, base: Path, display: str) -> None:
        self.base, self.display = base, display
        self._made: set[Path] = set()

    def folder(self, place: Place) -> Path:
        folder = self.base / FOLDERS[place]
        return folder / self.display if place in PER_BACKEND else folder

    def write(self, docs: Iterable[tuple[str, Place, Document]]) -> None:
        for job_id, place, doc in docs:
            folder = self.folder(place)
            if folder not in self._made:
                folder.mkdir(parents=True, exist_ok=True)
                self._made.add(folder)
            (folder / f"{job_id}.json").write_bytes(json.dumps(doc).encode())

    def close(self) -> None:
        pass


class MongoSeeder:
    """Documents in the Mongo provider's collections (storage_providers.mongodb.COLLECTIONS)."""

    def __init__(self, client: Any, display: str) -> None:
        self.client, self.display = client, display

    def write(self, docs: Iterable[tuple[str, Place, Document]]) -> None:
        from bson import ObjectId

        pending: dict[Place, list[Document]] = {}
        for job_id, place, doc in docs:
            batch = pending.setdefault(place, [])
            batch.append({"_id": ObjectId(job_id), **doc})
            if len(batch) >= BATCH:
                self._insert(place, pending.pop(place))
        for place, batch in pending.items():
            self._insert(place, batch)

    def _insert(self, place: Place, batch: list[Document]) -> None:
        database, collection = COLLECTIONS[place]
        self.client[database][collection.format(display=self.display)].insert_many(batch)

    def close(self) -> None:
        pass


Seeder = LocalSeeder | MongoSeeder


def seed(seeder: Seeder, fill: Fill, job: Document) -> tuple[list[str], list[str]]:
    """Write `fill`'s jobs, the finished ones first (older ids); (finished ids, queued ids)."""
    finished = [new_object_id() for _ in range(fill.finished)]
    queued = [new_object_id() for _ in range(fill.queued)]
    seeder.write((i, p, d) for i in finished for p, d in finished_documents(i, job))
    seeder.write((i, p, d) for i in queued for p, d in queued_documents(i, job))
    return finished, queued


def seed_ledger(db: Path, provider: str, finished: list[str], queued: list[str]) -> None:
    """The ledger rows of seeded jobs, owned by the benchmark's user (reads check them)."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(db) as conn:
        (owner,) = conn.execute("SELECT id FROM auth_user WHERE username = ?", (OWNER,)).fetchone()
        (pk,) = conn.execute(
            "SELECT id FROM backends_storageproviderdb WHERE name = ?", (provider,)
        ).fetchone()
        backend = f"{provider}_{DISPLAY}_simulator"
        rows = [(i, "DONE", now, now) for i in finished] + [
            (i, "QUEUED", None, None) for i in queued
        ]
        conn.executemany(
            "INSERT INTO backends_job (job_id, storage_provider_id, display_name, owner_id, "
            "submitted_at, backend_name, status, started_at, finished_at, shots, experiments) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 4, 1)",
            [(i, pk, DISPLAY, owner, now, backend, s, t0, t1) for i, s, t0, t1 in rows],
        )


def seeder_for(site: Site) -> Seeder:
    medium = site.medium
    if isinstance(medium, api_bench.LocalMedium):
        return LocalSeeder(medium.base, DISPLAY)
    return MongoSeeder(medium.client, DISPLAY)


def fill_site(site: Site, fill: Fill) -> str:
    """Seed a site's storage and ledger; the finished job in the middle, for the reads."""
    say(f"{site.storage}: writing {fill.finished} finished and {fill.queued} queued jobs")
    finished, queued = seed(seeder_for(site), fill, job_document())
    seed_ledger(site.db, site.medium.provider, finished, queued)
    settle(site.medium.pids)
    return finished[len(finished) // 2]


def settle(servers: list[int]) -> None:
    """Let a fill written in bulk come to rest before the full run is measured.

    A lab's storage fills over months; the bench's in a minute, unsynced. Without this
    the full run would share the disk with the kernel's writeback of those files (or
    with the database server still absorbing its batches) and measure the bulk load's
    aftermath rather than the size of the storage. So: `sync`, then wait (at most
    SETTLE_SECONDS) until the storage's server processes use under a tenth of a core.
    """
    started = time.perf_counter()
    os.sync()
    while servers and time.perf_counter() - started < SETTLE_SECONDS:
        before = sum(cpu_seconds(pid) for pid in servers)
        time.sleep(1.0)
        if sum(cpu_seconds(pid) for pid in servers) - before < 0.1:
            break
    say(f"  settled in {time.perf_counter() - started:.1f} s")


# ---- the API: the job endpoints on empty, then on full storage ----------------------


@dataclass
class Measured:
    """One endpoint's load: req/s, CPU ms per request, others' share (%) of the CPUs."""

    rps: float
    cpu: float | None
    others: float


def api_tables(
    scratch: Scratch, options: argparse.Namespace, sites: list[Site]
) -> list[tuple[str, list[Row]]]:
    floor, floor_url = api_bench.start_sites(
        scratch, options.storages, sites, retry_writes=options.retry_writes
    )
    tables = []
    for site in sites:
        runs = []
        for tag, fill in (("empty", Fill(1, 0)), ("full", options.fill)):
            job_id = fill_site(site, fill)
            runs.append(measure(scratch, site, (floor, floor_url), options, job_id, tag))
        title = f"{site.storage} storage, API (gunicorn 2 sync workers)"
        tables.append((title, compare(*runs)))
    return tables


def measure(
    scratch: Scratch,
    site: Site,
    floor: tuple[Server, str],
    options: argparse.Namespace,
    job_id: str,
    tag: str,
) -> tuple[dict[str, Measured], bool]:
    """The reads of `job_id`, post_job and the floor; and whether all answered 2xx and
    every post was stored."""
    query = f"job_id={job_id}&token={site.token}"
    reads = [(name, f"{site.backend}/{name}?{query}") for name in READS]
    say(f"{site.storage}: loading the job endpoints, {options.duration} s each (job {job_id})")
    load = Load(scratch, site, floor[0], options, ["floor", "post_job"], reads, f"-{tag}")
    load.start(floor[1])
    results, windows = load.finish()
    measured = {r["name"]: Measured(r["rps"], None, 0.0) for r in results}
    if [w.name for w in windows] == [r["name"] for r in results]:
        for window, result in zip(windows, results, strict=True):
            measured[result["name"]] = metered(window, result)
    for r in results:
        if r["non2xx"]:
            say(f"{site.storage}: {r['non2xx']} non-2xx answers under load on {r['name']}")
    stored = jobs_verified(job_check(site, results, load.ids_file))
    return measured, stored and not any(r["non2xx"] for r in results)


def metered(window: Window, result: dict) -> Measured:
    cores = os.cpu_count() or 1
    others = 100 * window.others / cores / window.wall if window.wall else 0.0
    return Measured(result["rps"], cpu_ms(window, result), others)


def compare(
    empty: tuple[dict[str, Measured], bool], full: tuple[dict[str, Measured], bool]
) -> list[Row]:
    (before, _), (after, stored) = empty, full
    rows = []
    for name in (*READS, "post_job", "floor"):
        a, b = before[name], after[name]
        row = Row(name, a.rps, b.rps, a.cpu, b.cpu, max(a.others, b.others))
        row.judged = name != "floor"
        row.sound = stored
        rows.append(row)
    return rows


# ---- the spooler: empty queue, then a full storage ----------------------------------


def spooler_table(scratch: Scratch, options: argparse.Namespace) -> tuple[str, list[Row]]:
    display = spooler_bench.DISPLAY
    job = spooler_job()

    def seed_staging(staging: Path) -> None:
        say(f"spooler: writing {options.fill.finished} finished, {options.fill.queued} queued jobs")
        seed(LocalSeeder(staging, display), options.fill, job)
        settle([])

    jobs, timeout = options.jobs, options.timeout
    empty = spooler_bench.throughput(scratch, 1, jobs, timeout, tag="-empty")
    full = spooler_bench.throughput(scratch, 1, jobs, timeout, seed=seed_staging, tag="-full")
    name = f"{display} jobs/s"
    row = Row(name, empty.rate, full.rate, others=max(empty.others, full.others))
    row.sound = all(r.done == r.jobs and not r.failed for r in (empty, full))
    title = (
        f"local storage, one spooler: {jobs} trivial jobs; full: {options.fill.queued} more "
        "queued before them"
    )
    return title, [row]


def mongo_spooler_table(
    scratch: Scratch, site: Site, options: argparse.Namespace
) -> tuple[str, list[Row]]:
    """The same two runs through a spooler on the API's MongoDB server (another backend)."""
    empty = mongo_throughput(scratch, site, options, Fill(0, 0), "empty")
    say(f"spooler on mongodb: writing {options.fill.finished} finished jobs")
    seeder = MongoSeeder(site.medium.client, spooler_bench.DISPLAY)  # type: ignore[union-attr]
    seed(seeder, Fill(options.fill.finished, 0), spooler_job())
    settle(site.medium.pids)
    full = mongo_throughput(scratch, site, options, Fill(0, options.fill.queued), "full")
    row = Row(f"{spooler_bench.DISPLAY} jobs/s", empty.rate, full.rate)
    row.others = max(empty.others, full.others)
    row.sound = all(r.done == r.jobs and not r.failed for r in (empty, full))
    title = f"mongodb storage, one spooler: {options.jobs} trivial jobs, as on local"
    return title, [row]


def mongo_throughput(
    scratch: Scratch, site: Site, options: argparse.Namespace, before: Fill, tag: str
) -> spooler_bench.Throughput:
    """One spooler through `before.queued` + `--jobs` jobs queued while it was stopped.

    The spooler is paused (SIGSTOP) while the jobs are inserted, so that all appear at
    once; the clock runs from its SIGCONT until its log has reported every job.
    """
    medium, display = site.medium, spooler_bench.DISPLAY
    proc = scratch.spooler(
        f"spooler-mongodb-{tag}", display, provider=medium.provider,
        storage_type=medium.storage, login=medium.login,
    )  # fmt: skip
    scratch.wait_log(proc, "serving ")
    jobs = before.queued + options.jobs
    say(f"spooler on mongodb: queueing {jobs} jobs while it is stopped")
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        seed(MongoSeeder(medium.client, display), Fill(0, jobs), spooler_job())  # type: ignore[union-attr]
        settle(medium.pids)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    others = spooler_bench.Others(scratch)
    started = time.perf_counter()
    ended: list[str] = []
    while len(ended) < jobs and time.perf_counter() - started < options.timeout:
        time.sleep(0.1)
        if proc.poll() is not None:
            raise BenchError(f"the spooler exited:\n{scratch.tail(proc)}")
        ended = ENDED.findall(scratch.tail(proc, 1 << 30))
    seconds = time.perf_counter() - started
    busy = others.share()
    scratch.stop(proc)
    done = ended.count("DONE")
    say(f"  {done} DONE, {len(ended) - done} other in {seconds:.2f} s")
    return spooler_bench.Throughput(1, jobs, seconds, done, len(ended) - done, busy)


def spooler_job() -> Document:
    from storage_providers.schemas import check_job

    return check_job(json.loads(json.dumps(spooler_bench.JOB)), "sequential")


# ---- report -----------------------------------------------------------------------


def report(tables: list[tuple[str, list[Row]]], options: argparse.Namespace) -> int:
    fill = options.fill
    print()
    print(
        f"flat as storage grows: empty storage vs {fill.finished} finished + {fill.queued} "
        f"queued jobs already stored; wrk {options.threads} threads, {options.concurrency} "
        f"connections, {options.duration} s per endpoint"
    )
    missed = []
    for title, rows in tables:
        print()
        print(title)
        print(
            f"{'endpoint':<20}{'empty/s':>9}{'full/s':>9}{'ratio':>7}{'target':>8}  "
            f"{'result':<11}{'cpu ms':>7}{'->':>7}{'ratio':>7}{'others':>7}"
        )
        for row in rows:
            goal = f">= {TARGET:.1f}" if row.judged else ""
            verdict = row.verdict()
            if verdict == "FAIL":
                missed.append(f"{title.split(',')[0]} {row.name}")
            cpu = ""
            if row.empty_cpu is not None and row.full_cpu is not None:
                cpu = f"{row.empty_cpu:>7.2f}{row.full_cpu:>7.2f}{row.cpu_ratio or 0:>7.2f}"
            else:
                cpu = f"{'':>21}"
            print(
                f"{row.name:<20}{row.empty:>9.1f}{row.full:>9.1f}{row.ratio:>7.2f}{goal:>8}  "
                f"{verdict:<11}{cpu}{row.others:>6.0f}%"
            )
    print()
    print(
        "ratio: full over empty (req/s, jobs/s). cpu ms: CPU of the serving processes per\n"
        "request, empty -> full, and empty over full. others: the larger share of all CPUs\n"
        "that processes outside the benchmark took in the two runs; above "
        f"{BUSY_WARNING:.0f}% the req/s\n"
        "are noise and the cpu ratio judges (cpu). post_job also needs every answered job\n"
        "stored; the spooler, every job DONE. floor: the machine's drift, no target."
    )
    print()
    print("missed: " + ", ".join(missed) if missed else "every target met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
