"""API load benchmark: every v2 endpoint against a framework floor, with wrk.

    .venv/bin/python bench/api_bench.py [--storage local|mongodb|both] [--duration 8]
        [--concurrency 16] [--json FILE] [--worker-class sync|gthread] [--worker-threads 4]

Sets up one scratch install per storage, each with its own SQLite database, token
and gunicorn (2 workers, sync unless told, DEBUG off): `local` is a local provider `alqor`;
`mongodb` is a provider `mongo` logging in to a secantusdb MongoDB-wire server that
the benchmark starts itself (bench/mongo_server.py: a SCRAM user, auth required),
with the simulators' configs uploaded there by `manage.py upload_backend_config`.
Beside them, one floor: the same settings and middleware with one constant
django-ninja endpoint (bench/floor_urls.py). The shared driver
../shared/bench/qlued_bench.py loads each endpoint in turn, one storage after the
other in the same sitting (default: both), and each table's ratios are to the floor
runs of its own pass.

The job the driver polls (its preflight post) is run by a real spooler on that
storage before any load starts: the driver is paused (SIGSTOP) from the moment that
job appears until the spooler has finished it and stopped, so no load shares the
CPU with a spooler. Afterwards every job id answered by post_job under load is looked
up in the storage (its status and its queue entry) and in the ledger, worker memory
is compared with the floor's, and one table per storage is printed. Everything is
stopped and removed at the end, also on failure and Ctrl-C.

On local storage, post_job is then held to the disk rather than to the floor: the
disk's own limit is measured right after its load (bench/disk_limit.py: as many
processes as workers, storing posts with the same code and fsyncs and committing
one SQLite row each, nothing else), and post_job runs once more on a gunicorn whose
fsyncs are no-ops (LD_PRELOAD of bench/nosync.c, built with cc) to meter the CPU a
post costs apart from waiting for the disk.

The machine may be shared, so besides req/s each load is metered from /proc: the
CPU the serving processes spent per request (gunicorn, and for mongodb the database
server too; its ratio to the floor's hardly depends on other load), and the share of
the CPUs that processes outside this benchmark took meanwhile (when that is high,
the req/s ratios are not to be trusted).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import disk_limit
from harness import (
    DRIVER,
    PROVIDER,
    PYTHON,
    BenchError,
    Scratch,
    Server,
    add_workdir_option,
    children,
    cpu_seconds,
    guarded,
    json_ids,
    machine_busy_seconds,
    raise_on_sigterm,
    read_json,
    rss_kib,
    say,
    session_cpu_seconds,
)

DISPLAY = "fermions"  # the driver's job is a fermions job
OWNER = "bench"
MONGO_PROVIDER = "mongo"
WRK_WRAPPER = Path(__file__).resolve().with_name("wrk_keep_ids.sh")
NOSYNC_SOURCE = Path(__file__).resolve().with_name("nosync.c")
WORKERS = 2  # gunicorn workers of every server here, and the disk limit's processes
STORAGES = ("local", "mongodb")
# Reads: req/s over the floor's (issue 15). post_job is held to the disk instead.
TARGETS = {
    "local": {
        "get_config": 0.85,
        "get_backend_status": 0.9,
        "backends": 0.9,
        "get_job_status": 0.75,
        "get_job_result": 0.75,
    },
    "mongodb": {
        "get_config": 0.85,
        "get_backend_status": 0.9,
        "backends": 0.9,
        "get_job_status": 0.6,
        "get_job_result": 0.6,
    },
}
LIMIT_TARGET = 0.7  # post_job's req/s over the disk's own limit (bench/disk_limit.py)
NOSYNC_CPU_TARGET = 2.0  # ms of worker CPU per post with every fsync a no-op
RSS_TARGET = 1.2
BUSY_WARNING = 10.0  # % of the CPUs taken by others during a load: its req/s is suspect
# The floor is measured three times in each pass, spread over it, and each ratio is to
# their mean; post_job runs last, so the reads see small folders and collections.
ORDER = [
    "floor", "get_config", "get_backend_status", "backends",
    "floor", "get_job_status", "get_job_result",
    "floor", "post_job",
]  # fmt: skip
LOAD_START = re.compile(r"^\[[\d:]+\] (\w+): \w+ \d+s c=\d+")


@dataclass
class Window:
    """What the machine did during one endpoint's load."""

    name: str
    wall: float
    server_cpu: float  # CPU seconds of the serving processes (gunicorn, database server)
    storage_cpu: float  # of which the database server's (0 on local storage)
    others: float  # CPU seconds of processes outside this benchmark


class Meter(threading.Thread):
    """Echoes the driver's progress lines and brackets each load with CPU readings.

    `serving` maps "api" and "floor" to their gunicorn master (its workers are counted
    too); the API's storage server, when it has one, is counted with the API and apart.
    """

    def __init__(
        self, stream: IO[str], serving: dict[str, int], storage: list[int], scratch: Scratch
    ) -> None:
        super().__init__(daemon=True)
        self.stream, self.serving, self.storage, self.scratch = stream, serving, storage, scratch
        self.windows: list[Window] = []

    def run(self) -> None:
        opened: tuple[str, tuple[float, ...]] | None = None
        for line in self.stream:
            sys.stderr.write(line)
            started = LOAD_START.match(line)
            if started:
                name = started.group(1)
                opened = (name, self._reading(name))
            elif line.lstrip().startswith("->") and opened is not None:
                name, before = opened
                after = self._reading(name)
                wall, busy, ours, server, db = (a - b for a, b in zip(after, before, strict=True))
                self.windows.append(Window(name, wall, server + db, db, max(0.0, busy - ours)))
                opened = None

    def _reading(self, name: str) -> tuple[float, ...]:
        master = self.serving["floor" if name == "floor" else "api"]
        storage = [] if name == "floor" else self.storage
        ours = session_cpu_seconds(self.scratch.sessions) + cpu_seconds(os.getpid())
        return (
            time.monotonic(),
            machine_busy_seconds(),
            ours,
            sum(cpu_seconds(pid) for pid in (master, *children(master))),
            sum(cpu_seconds(pid) for pid in storage),
        )


# ---- the media: where a pass's jobs are looked up -------------------------------


class LocalMedium:
    """The local provider's folder (SPEC §6)."""

    storage = "local"
    provider = PROVIDER

    def __init__(self, base: Path) -> None:
        self.base = base
        self.login: dict[str, str] = {"base_path": str(base)}
        self.pids: list[int] = []  # no server of its own: the workers' kernel time is its cost

    def ids(self, place: str) -> set[str]:
        """Job ids in `status`, `queued` or `finished` of the benchmark's backend."""
        folders = {"status": "status", "queued": "jobs/queued", "finished": "jobs/finished"}
        return json_ids(self.base / folders[place] / DISPLAY)

    def status(self, job_id: str) -> str | None:
        return read_json(self.base / "status" / DISPLAY / f"{job_id}.json").get("status")

    def close(self) -> None:
        pass


class MongoMedium:
    """The benchmark's Mongo-wire server, read with pymongo (SPEC §6: database/collection)."""

    storage = "mongodb"
    provider = MONGO_PROVIDER

    def __init__(self, server: subprocess.Popen, login: dict[str, str]) -> None:
        import pymongo

        self.login = login
        self.pids = [server.pid]
        self.client: Any = pymongo.MongoClient(
            login["mongodb_database_url"],
            username=login["mongodb_username"],
            password=login["mongodb_password"],
            serverSelectionTimeoutMS=5000,
        )

    def _collection(self, place: str) -> Any:
        where = {
            "status": ("status", DISPLAY),
            "queued": ("jobs", f"queued.{DISPLAY}"),
            "finished": ("jobs", f"finished.{DISPLAY}"),
        }
        database, collection = where[place]
        return self.client[database][collection]

    def ids(self, place: str) -> set[str]:
        return {str(doc["_id"]) for doc in self._collection(place).find({}, {"_id": 1})}

    def status(self, job_id: str) -> str | None:
        from bson import ObjectId

        doc = self._collection("status").find_one({"_id": ObjectId(job_id)})
        return doc.get("status") if doc else None

    def close(self) -> None:
        self.client.close()


Medium = LocalMedium | MongoMedium


@dataclass
class Site:
    """One qlued install under load: its storage, database, token and gunicorn."""

    medium: Medium
    db: Path
    env: dict[str, str]  # settings that differ from the scratch's defaults
    token: str = ""
    api: Server | None = None

    @property
    def storage(self) -> str:
        return self.medium.storage

    @property
    def backend(self) -> str:
        return f"{self.medium.provider}_{DISPLAY}_simulator"

    @property
    def server(self) -> Server:
        if self.api is None:
            raise BenchError(f"the {self.storage} API was not started")
        return self.api


@dataclass
class Pass:
    """One storage's run of the driver, and what was checked after it."""

    site: Site
    results: list[dict]
    windows: list[Window]
    memory: dict[str, dict[int, int]]
    done_job: str | None
    overlapped: bool
    jobs: dict[str, int] = field(default_factory=dict)
    ledger: dict[str, int] = field(default_factory=dict)
    limit: PostLimits | None = None  # local storage only


@dataclass
class PostLimits:
    """post_job against the disk: the limit measured after its load, and its CPU cost."""

    post_rps: float  # post_job's own load, between the two limit runs
    disk_posts_per_s: float  # WORKERS processes storing posts durably, nothing else
    disk_cpu_ms: float  # their CPU per post, the fsyncs' included
    nosync_cpu_ms: float  # worker CPU per post, every fsync a no-op (LD_PRELOAD)
    nosync_rps: float
    grouped_rps: float = 0.0  # post_job on gthread workers sharing fsyncs (group commit)
    grouped_stored: bool = True  # every post that run answered is in storage and ledger


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_on_sigterm()
    if not DRIVER.exists():
        print(f"error: the shared driver is missing: {DRIVER}", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    sites: list[Site] = []

    def body() -> int:
        with Scratch("qlued_api_bench_", options.workdir) as scratch:
            try:
                return run(scratch, options, sites)
            finally:
                for site in sites:
                    site.medium.close()

    return guarded(body)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--storage",
        choices=[*STORAGES, "both"],
        default="both",
        help="the storage behind the API; both: local, then mongodb (default: %(default)s)",
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--json", type=Path, help="also keep the driver's raw results here")
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="sync",
        help="gunicorn's, for the floor and the API alike (default: %(default)s, as served)",
    )
    parser.add_argument(
        "--worker-threads", type=int, default=4, help="threads per gthread worker (default 4)"
    )
    add_retry_writes_option(parser)
    add_workdir_option(parser)
    options = parser.parse_args(argv)
    options.storages = list(STORAGES) if options.storage == "both" else [options.storage]
    return options


def add_retry_writes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retry-writes",
        action="store_true",
        help="keep the MongoDB driver's retryable writes on (see set_up_mongodb: off by "
        "default, since the test server's cost for them grows with every write it has seen)",
    )


def run(scratch: Scratch, options: argparse.Namespace, sites: list[Site]) -> int:
    """Every pass loaded and reported; 1 when a pass missed a target, else 0."""
    scratch.env["GUNICORN_CMD_ARGS"] = worker_args(options)  # every server: floor and API
    floor, floor_url = start_sites(
        scratch, options.storages, sites, retry_writes=options.retry_writes
    )
    passes = [drive(scratch, site, floor, floor_url, options) for site in sites]
    if options.json:
        raw = {p.site.storage: read_json(driver_output(scratch, p.site)) for p in passes}
        options.json.write_text(json.dumps(raw, indent=2))
    met = [report(done, options) for done in passes]
    if len(passes) > 1:
        floors = ", ".join(f"{p.site.storage} pass {floor_rps(p.results):.1f}" for p in passes)
        print(f"\nfloor req/s (mean of each pass's floor runs, one floor server): {floors}")
    return 0 if all(met) else 1


def worker_args(options: argparse.Namespace) -> str:
    if options.worker_class == "sync":
        return "--worker-class sync"
    return f"--worker-class gthread --threads {options.worker_threads}"


def workers_label(options: argparse.Namespace) -> str:
    if getattr(options, "worker_class", "sync") == "sync":
        return f"{WORKERS} sync workers"
    return f"{WORKERS} gthread workers of {options.worker_threads} threads"


def start_sites(
    scratch: Scratch, storages: list[str], sites: list[Site], *, retry_writes: bool = False
) -> tuple[Server, str]:
    """An install per storage, appended to `sites` as it is made, and the floor; all up.

    Returns the floor's server and its URL.
    """
    for storage in storages:
        say(f"setting up a scratch install on {storage} storage")
        sites.append(set_up(scratch, storage, retry_writes=retry_writes))
    floor = scratch.serve("floor", "bench.floor_settings", env=sites[0].env)  # a migrated db
    floor_url = f"{floor.base}/api/v2/floor"
    scratch.wait_http(floor_url, floor.proc)
    for site in sites:
        scratch.wait_http(f"{site.server.base}/api/v2/backends", site.server.proc)
    return floor, floor_url


def set_up(scratch: Scratch, storage: str, *, retry_writes: bool = False) -> Site:
    """An install of its own (database, data folder, token) on `storage`, and its gunicorn."""
    if storage == "local":
        site = Site(LocalMedium(scratch.storage), scratch.dir / "db.sqlite3", {})
        site.token = scratch.install(OWNER)
    else:
        site = set_up_mongodb(scratch, retry_writes=retry_writes)
    site.api = scratch.serve(f"api-{storage}", "qlued.settings", env=site.env)
    return site


def set_up_mongodb(scratch: Scratch, *, retry_writes: bool = False) -> Site:
    """The Mongo server, a `mongodb` provider logging in to it, its configs and a token.

    Unless `retry_writes`, the login's URI turns retryable writes off, for the service,
    the spoolers and the benchmark's own client alike. secantusdb remembers every
    retryable write for 30 minutes and, on each new one, scans them all and, past
    10,000, sorts them: a write then costs 15-24 ms instead of 1.3-1.6 ms, however
    little is stored. That measures how many writes the test server has seen, not how
    the service's cost grows; a real MongoDB keeps one record per session instead.
    """
    server = scratch.start(
        "mongo", [PYTHON, "-m", "bench.mongo_server", str(scratch.dir / "mongo")]
    )
    scratch.wait_log(server, "ready ")
    line = next(t for t in scratch.tail(server, 20_000).splitlines() if t.startswith("ready "))
    login = json.loads(line.removeprefix("ready "))
    if not retry_writes:
        url = login["mongodb_database_url"]
        login["mongodb_database_url"] = f"{url}{'&' if '?' in url else '?'}retryWrites=false"
    db = scratch.dir / "db-mongodb.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{db}", "QLUED_DATA_DIR": str(scratch.dir / "data-mongodb")}
    site = Site(MongoMedium(server, login), db, env)
    scratch.manage("migrate", "--noinput", "-v0", env=env)
    scratch.manage("collectstatic", "--noinput", "-v0", env=env)
    scratch.manage(
        "create_storage_provider", "--name", MONGO_PROVIDER, "--type", "mongodb",
        "--login", json.dumps(login), "--owner", OWNER, env=env,
    )  # fmt: skip
    from spooler.simulators import BACKENDS  # numpy and scipy: only when they are needed

    for display, backend in BACKENDS.items():
        path = scratch.dir / f"config-{display}.json"
        path.write_text(json.dumps(backend.config()))
        scratch.manage("upload_backend_config", "--provider", MONGO_PROVIDER, str(path), env=env)
    site.token = scratch.manage("issue_token", OWNER, env=env).strip().splitlines()[-1].strip()
    return site


# ---- one pass ---------------------------------------------------------------------


def drive(
    scratch: Scratch, site: Site, floor: Server, floor_url: str, options: argparse.Namespace
) -> Pass:
    """The driver over every endpoint of ORDER on one site, and the checks after it."""
    medium = site.medium
    spooler = scratch.spooler(
        f"spooler-{site.storage}", DISPLAY, provider=medium.provider,
        storage_type=medium.storage, login=medium.login,
    )  # fmt: skip
    scratch.wait_log(spooler, "serving ")
    before = medium.ids("status")
    say(f"{site.storage}: driving {len(ORDER)} endpoint runs, {options.duration} s each")
    load = Load(scratch, site, floor, options, ORDER)
    load.start(floor_url)
    done_job, overlapped = finish_first_job(scratch, load.driver, spooler, medium, before)
    results, windows = load.finish()
    memory = {"api": worker_rss(site.server), "floor": worker_rss(floor)}
    done = Pass(site, results, windows, memory, done_job, overlapped)
    done.jobs = job_check(site, results, load.ids_file)
    done.ledger = ledger_check(site)
    if isinstance(medium, LocalMedium):
        done.limit = post_limits(scratch, site, floor, floor_url, options)
    return done


def post_limits(
    scratch: Scratch, site: Site, floor: Server, floor_url: str, options: argparse.Namespace
) -> PostLimits:
    """post_job between two runs of the disk's own limit, then its CPU with fsync a no-op.

    The disk's speed here drifts within minutes (ext4 allocates inodes slower for a
    while after many files were removed), so post_job is compared with the mean of
    the limit measured just before and just after it, in the same folders and database.
    """
    assert isinstance(site.medium, LocalMedium)
    limits = []
    for when in ("before", "after"):
        say(
            f"{site.storage}: the disk's limit ({when} post_job), {WORKERS} processes, nothing else"
        )
        limits.append(
            disk_limit.measure(site.medium.base, site.db, WORKERS, float(options.duration))
        )
        if when == "before":
            load = Load(scratch, site, floor, options, ["post_job"], tag="-vs-disk")
            load.start(floor_url)
            durable = named(load.finish()[0], "post_job")
            grouped, stored = grouped_posts(scratch, site, floor, floor_url, options)
    shim = scratch.dir / "nosync.so"
    if not shim.exists():
        built = subprocess.run(
            ["cc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(NOSYNC_SOURCE)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if built.returncode != 0:
            raise BenchError(f"cannot build {NOSYNC_SOURCE.name}: {built.stderr.strip()}")
    say(f"{site.storage}: post_job once more, with every fsync a no-op, for its CPU")
    server = scratch.serve(
        f"api-{site.storage}-nosync", "qlued.settings", WORKERS,
        env={**site.env, "LD_PRELOAD": str(shim)},
    )  # fmt: skip
    try:
        scratch.wait_http(f"{server.base}/api/v2/backends", server.proc)
        load = Load(scratch, replace(site, api=server), floor, options, ["post_job"], tag="-nosync")
        load.start(floor_url)
        results, windows = load.finish()
    finally:
        scratch.stop(server.proc)
    post = named(results, "post_job")
    window = next((w for w in windows if w.name == "post_job"), None)
    cpu = cpu_ms(window, post) if window is not None and post else 0.0
    return PostLimits(
        durable.get("rps", 0.0),
        mean(limit.posts_per_s for limit in limits),
        mean(limit.cpu_ms for limit in limits),
        cpu,
        post.get("rps", 0.0),
        grouped,
        stored,
    )


def grouped_posts(
    scratch: Scratch, site: Site, floor: Server, floor_url: str, options: argparse.Namespace
) -> tuple[float, bool]:
    """post_job on gthread workers, whose concurrent posts share the folders' and the
    ledger's fsyncs (group commit): its req/s, and whether every answered post is stored."""
    threads = options.worker_threads
    say(f"{site.storage}: post_job on {WORKERS} gthread workers of {threads} threads")
    server = scratch.serve(
        f"api-{site.storage}-gthread", "qlued.settings", WORKERS,
        env={**site.env, "GUNICORN_CMD_ARGS": f"--worker-class gthread --threads {threads}"},
    )  # fmt: skip
    try:
        scratch.wait_http(f"{server.base}/api/v2/backends", server.proc)
        load = Load(
            scratch, replace(site, api=server), floor, options, ["post_job"], tag="-gthread"
        )
        load.start(floor_url)
        results, _ = load.finish()
    finally:
        scratch.stop(server.proc)
    stored = jobs_verified(job_check(site, results, load.ids_file))
    return named(results, "post_job").get("rps", 0.0), stored


class Load:
    """One run of the shared driver on a site, metered: its endpoints in order, then `extra`.

    `extra` are (name, path) pairs of GETs the driver loads last, the path under the
    site's /api/v2/ (the driver can load fixed URLs only). `tag` tells apart several
    runs on one site.
    """

    def __init__(
        self,
        scratch: Scratch,
        site: Site,
        floor: Server,
        options: argparse.Namespace,
        endpoints: list[str],
        extra: Iterable[tuple[str, str]] = (),
        tag: str = "",
    ) -> None:
        self.scratch, self.site, self.floor, self.options = scratch, site, floor, options
        self.endpoints, self.extra = endpoints, list(extra)
        self.output = driver_output(scratch, site, tag)
        self.keep = scratch.dir / f"ids-{site.storage}{tag}"
        self._driver: subprocess.Popen | None = None
        self.meter: Meter | None = None

    @property
    def driver(self) -> subprocess.Popen:
        if self._driver is None:
            raise BenchError("the driver was not started")
        return self._driver

    @property
    def ids_file(self) -> Path:
        """The job ids post_job answered under this load."""
        return self.keep / "post_job.ids"

    def start(self, floor_url: str) -> None:
        self.keep.mkdir()
        env = {"TMPDIR": str(self.scratch.dir), "WRK_REAL": shutil.which("wrk") or "wrk"}
        env["KEEP_IDS_DIR"] = str(self.keep)
        command = driver_command(self.options, self.scratch, self.site, floor_url, self.endpoints)
        for name, path in self.extra:
            command.append(f"--extra-get={name}={self.site.server.base}/api/v2/{path}")
        command += ["--json", str(self.output)]
        driver = self.scratch.start(
            self.output.stem, command, env, stderr=subprocess.PIPE, text=True
        )
        self._driver = driver
        serving = {"api": self.site.server.proc.pid, "floor": self.floor.proc.pid}
        self.meter = Meter(driver.stderr, serving, self.site.medium.pids, self.scratch)  # type: ignore[arg-type]
        self.meter.start()

    def finish(self) -> tuple[list[dict], list[Window]]:
        """Wait for the driver; its results and the meter's windows, one per load."""
        loads = len(self.endpoints) + len(self.extra)
        budget = loads * (self.options.duration + 30) + 60  # the driver bounds each load
        try:
            rc = self.driver.wait(budget)
        except subprocess.TimeoutExpired:
            raise BenchError(f"the driver did not finish within {budget} s") from None
        if self.meter is not None:
            self.meter.join(5)
        if rc != 0 or not self.output.exists():
            raise BenchError(f"the driver failed (exit {rc}); see its output above")
        results = json.loads(self.output.read_text())["results"]
        return results, self.meter.windows if self.meter else []


def driver_output(scratch: Scratch, site: Site, tag: str = "") -> Path:
    return scratch.dir / f"driver-{site.storage}{tag}.json"


def driver_command(
    options: argparse.Namespace,
    scratch: Scratch,
    site: Site,
    floor_url: str,
    endpoints: list[str],
) -> list[str]:
    # The driver captures post_job's job ids only with a --storage-base; on Mongo it gets
    # an empty folder (its own file check then means nothing and is not used: the ids
    # are checked against the database here).
    if isinstance(site.medium, LocalMedium):
        storage_base = site.medium.base
    else:
        storage_base = scratch.dir / "no-local-storage"
        storage_base.mkdir(exist_ok=True)
    return [
        PYTHON, str(DRIVER), "--base", site.server.base, f"--token={site.token}",
        "--backend", site.backend, "--floor", floor_url, "--endpoints", ",".join(endpoints),
        "--storage-base", str(storage_base), "--display-name", DISPLAY,
        "--duration", str(options.duration), "--concurrency", str(options.concurrency),
        "--threads", str(options.threads), "--engine", "wrk", "--wrk", str(WRK_WRAPPER),
    ]  # fmt: skip


def finish_first_job(
    scratch: Scratch,
    driver: subprocess.Popen,
    spooler: subprocess.Popen,
    medium: Medium,
    before: set[str],
) -> tuple[str | None, bool]:
    """Pause the driver once its first job exists, let the spooler finish it, stop the spooler.

    Returns the job id (None if it did not get DONE in time) and whether wrk had
    already started when the driver was paused (then the first load overlapped).
    """
    deadline = time.monotonic() + 30
    new: set[str] = set()
    while not new:
        if driver.poll() is not None or time.monotonic() > deadline:
            scratch.stop(spooler)
            return None, False
        time.sleep(0.002)
        new = medium.ids("status") - before
    os.killpg(driver.pid, signal.SIGSTOP)
    try:
        overlapped = bool(children(driver.pid))
        job_id: str | None = min(new)
        while medium.status(job_id or "") != "DONE":
            if time.monotonic() > deadline:
                job_id = None
                break
            time.sleep(0.01)
        scratch.stop(spooler)
    finally:
        os.killpg(driver.pid, signal.SIGCONT)
    return job_id, overlapped


def worker_rss(server: Server) -> dict[int, int]:
    """VmRSS (KiB) of each worker of a gunicorn master."""
    found = {pid: rss_kib(pid) for pid in children(server.proc.pid)}
    return {pid: kib for pid, kib in found.items() if kib is not None}


def job_check(site: Site, results: list[dict], ids_file: Path) -> dict[str, int]:
    """Every job id post_job answered under load has its status, its queue entry, its row."""
    try:
        answered = {line.strip() for line in ids_file.read_text().splitlines() if line.strip()}
    except FileNotFoundError:
        answered = set()
    codes = named(results, "post_job").get("codes", {})
    status, queued = site.medium.ids("status"), site.medium.ids("queued")
    ledger = ledger_ids(site)
    return {
        "answered 2xx": sum(v for k, v in codes.items() if k.startswith("2")),
        "job ids": len(answered),
        "without status": len(answered - status),
        "without queue entry": len(answered - queued),
        "without ledger row": len(answered - ledger),
        "queued, not answered under load": len(queued - answered),
    }


def ledger_ids(site: Site) -> set[str]:
    with sqlite3.connect(site.db) as db:
        rows = db.execute("SELECT job_id FROM backends_job WHERE display_name = ?", (DISPLAY,))
        return {row[0] for row in rows}


def ledger_check(site: Site) -> dict[str, int]:
    """Every job in the ledger has its status and its job (queued or finished), and back."""
    ledger = ledger_ids(site)
    status = site.medium.ids("status")
    placed = site.medium.ids("queued") | site.medium.ids("finished")
    return {
        "ledger rows": len(ledger),
        "statuses": len(status),
        "jobs": len(placed),
        "rows without status": len(ledger - status),
        "rows without job": len(ledger - placed),
        "stored without row": len((status | placed) - ledger),
    }


def jobs_verified(jobs: dict[str, int]) -> bool:
    """post_job's answers all reached the storage, and each 2xx gave one id."""
    lost = jobs["without status"] + jobs["without queue entry"] + jobs["without ledger row"]
    return jobs["job ids"] == jobs["answered 2xx"] > 0 and lost == 0


# ---- report ----------------------------------------------------------------------


def report(done: Pass, options: argparse.Namespace) -> bool:
    """A pass's table and checks; True when it met every target."""
    results, storage = done.results, done.site.storage
    targets = TARGETS[storage]
    metered = [w for w, r in zip(done.windows, results, strict=False) if w.name == r["name"]]
    if len(metered) != len(results):
        metered = []  # the progress lines did not match: leave the CPU columns out
    cpu = [cpu_ms(w, r) for w, r in zip(metered, results, strict=True)] or [0.0] * len(results)
    floor = floor_rps(results)
    floor_cpu = mean(c for c, r in zip(cpu, results, strict=True) if r["name"] == "floor")
    with_db = bool(done.site.medium.pids)  # a column for the database server's share
    print()
    print(
        f"qlued API on {storage} storage vs framework floor: gunicorn "
        f"{workers_label(options)} each, wrk {options.threads} threads, "
        f"{options.concurrency} connections, {options.duration} s per endpoint"
    )
    print()
    print(
        f"{'endpoint':<19}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'x floor':>8}"
        f"{'target':>8}  {'result':<7}{'cpu ms':>7}{'x floor':>8}{'others':>7}"
        + (f"{'db ms':>7}" if with_db else "")
    )
    missed, suspect = [], []
    for i, r in enumerate(results):
        ratio = r["rps"] / floor if floor else 0.0
        target = targets.get(r["name"])
        goal = f">= {target:.2f}" if target is not None else ""
        verdict = ""
        if target is not None or r["name"] == "post_job":
            ok = (target is None or ratio >= target) and r["non2xx"] == 0
            if r["name"] == "post_job":
                ok = ok and jobs_verified(done.jobs)  # its speed: print_post_limits
            verdict = "pass" if ok else "FAIL"
            if not ok:
                missed.append(r["name"])
        tail = ""
        if metered:
            others = 100 * metered[i].others / (os.cpu_count() or 1) / metered[i].wall
            if others > BUSY_WARNING:
                suspect.append(r["name"])
            cpu_ratio = floor_cpu / cpu[i] if cpu[i] else 0.0
            tail = f"{cpu[i]:>7.2f}{cpu_ratio:>8.2f}{others:>6.0f}%"
            if with_db and r["requests"]:
                tail += f"{1000 * metered[i].storage_cpu / r['requests']:>7.2f}"
        print(
            f"{r['name']:<19}{r['rps']:>8.1f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
            f"{r['non2xx']:>8}{ratio:>8.2f}{goal:>8}  {verdict:<7}{tail}"
        )
    missed += print_memory(done.memory)
    if done.limit is not None:
        missed += print_post_limits(done.limit, named(results, "post_job"), cpu, results)
    print()
    served = "gunicorn, and the Mongo server (db ms: its part)" if with_db else "gunicorn"
    print(
        "x floor: req/s over the mean of this pass's floor runs (the verdict; post_job also\n"
        "needs every answered job stored). cpu ms: CPU per request of the serving\n"
        f"{served}; its x floor is the floor's cpu ms over this one's, a steadier\n"
        "estimate for CPU-bound endpoints. others: share of all CPUs taken by processes\n"
        "outside this benchmark during the load (0% on a quiet machine)."
    )
    print()
    print("missed: " + ", ".join(missed) if missed else "every target met")
    if suspect:
        print(
            f"warning: other processes took over {BUSY_WARNING:.0f}% of the CPUs during "
            f"{', '.join(dict.fromkeys(suspect))}: those req/s are not reliable"
        )
    print_checks(done)
    return not missed


def print_memory(memory: dict[str, dict[int, int]]) -> list[str]:
    """The worker RSS line; the missed target's name, if it is missed."""
    api_rss, floor_rss = mean(memory["api"].values()), mean(memory["floor"].values())
    ratio = api_rss / floor_rss if floor_rss else 0.0
    verdict = "pass" if 0 < ratio <= RSS_TARGET else "FAIL"
    goal = f"<= {RSS_TARGET:.2f}"
    print(f"{'worker RSS MiB':<19}{api_rss / 1024:>8.1f}{'':>32}{ratio:>8.2f}{goal:>8}  {verdict}")
    print(
        f"  (VmRSS after the load: api workers {fmt_rss(memory['api'])}, "
        f"floor workers {fmt_rss(memory['floor'])})"
    )
    return [] if verdict == "pass" else ["worker RSS"]


def print_post_limits(
    limit: PostLimits, post: dict, cpu: list[float], results: list[dict]
) -> list[str]:
    """post_job over the disk's limit, and its CPU with fsync off; the missed targets."""
    missed = []
    ratio = limit.post_rps / limit.disk_posts_per_s if limit.disk_posts_per_s else 0.0
    verdict = "pass" if ratio >= LIMIT_TARGET else "FAIL"
    if verdict == "FAIL":
        missed.append("post_job x disk limit")
    print(f"{'disk limit':<19}{limit.disk_posts_per_s:>8.1f}{'':>48}{limit.disk_cpu_ms:>7.2f}")
    print(
        f"{'post_job vs disk':<19}{limit.post_rps:>8.1f}{'':>32}{ratio:>8.2f}"
        f"{f'>= {LIMIT_TARGET:.2f}':>8}  {verdict}"
    )
    if limit.grouped_rps:
        grouped = limit.grouped_rps / limit.disk_posts_per_s if limit.disk_posts_per_s else 0.0
        kept = "every answered post stored" if limit.grouped_stored else "answered posts MISSING"
        if not limit.grouped_stored:
            missed.append("post_job on gthread: answered posts missing")
        print(
            f"{'post_job, gthread':<19}{limit.grouped_rps:>8.1f}{'':>32}{grouped:>8.2f}  ({kept})"
        )
    read_cpu = next(
        (c for c, r in zip(cpu, results, strict=False) if r["name"] == "get_job_status"), 0.0
    )
    ok = 0 < limit.nosync_cpu_ms < NOSYNC_CPU_TARGET
    if not ok:
        missed.append("post_job CPU without fsync")
    print(
        f"{'post_job, no fsync':<19}{limit.nosync_rps:>8.1f}{'':>32}{'':>8}"
        f"{f'< {NOSYNC_CPU_TARGET:.1f} ms':>8}  {'pass' if ok else 'FAIL':<7}"
        f"{limit.nosync_cpu_ms:>7.2f}"
    )
    print(
        f"  (disk limit: posts/s of {WORKERS} processes that only store posts as post_job\n"
        "  does, in its folders and database, same fsyncs (bench/disk_limit.py): the mean\n"
        "  of a run just before and one just after post_job vs disk, post_job's own load;\n"
        "  its x floor column is req/s over that limit. post_job, gthread: the same load on\n"
        f"  gthread workers ({WORKERS} x threads), whose posts at once share the folders' and\n"
        "  the ledger's fsyncs (group commit). post_job, no fsync: the same load\n"
        "  with fsync a no-op (LD_PRELOAD bench/nosync.c); cpu ms per post, against "
        f"{read_cpu:.2f}\n  for get_job_status)"
    )
    return missed


def print_checks(done: Pass) -> None:
    print()
    status = preflight(done.results, "get_job_status").get("status")
    operational = preflight(done.results, "get_backend_status").get("operational")
    print(
        f"polled job {done.done_job or '(none: not finished in time)'}: get_job_status answered "
        f"{status}; get_backend_status operational: {operational}"
    )
    if done.overlapped:
        print("warning: wrk had started before the spooler finished; the first load overlapped")
    where = "files" if done.site.storage == "local" else "documents"
    print(f"post_job under load, answered job ids vs stored {where}: " + fmt_counts(done.jobs))
    print(f"every post of the pass, ledger vs {where}: " + fmt_counts(done.ledger))


def fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def floor_rps(results: list[dict]) -> float:
    return mean(r["rps"] for r in results if r["name"] == "floor")


def cpu_ms(window: Window, result: dict) -> float:
    return 1000 * window.server_cpu / result["requests"] if result["requests"] else 0.0


def named(results: list[dict], name: str) -> dict:
    return next((r for r in results if r["name"] == name), {})


def preflight(results: list[dict], name: str) -> dict:
    """The JSON body of an endpoint's preflight answer (the driver keeps its first 200 B)."""
    try:
        body = json.loads(named(results, name).get("preflight_snippet", ""))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def fmt_rss(workers: dict[int, int]) -> str:
    return ", ".join(f"{kib / 1024:.1f}" for kib in workers.values()) + " MiB"


if __name__ == "__main__":
    sys.exit(main())
