"""The disk's own limit for post_job: processes that store jobs durably and do nothing else.

    .venv/bin/python bench/disk_limit.py STORAGE LEDGER [--processes 2] [--seconds 8]

Each process loops over what a post makes durable, with the same code and the same
syncs: the local provider's `submit_job` (the status file, then the queue file:
each a temporary file, fsync, link, the folder fsynced), then one ledger row
committed to the SQLite file LEDGER in WAL mode with `synchronous=FULL`, as the
service's database is, into its job table (made, with the same indexes, when LEDGER
is not a qlued database). bench/api_bench.py points both at the service's own: the
same folders, the same database, right after post_job's load. No HTTP, no Django,
no validation: what is left is the disk's wait and the system calls. The sum of the
processes' rates is the limit that post_job, with as many workers, is measured
against. The jobs and rows it adds are marked by their backend name (`limit_...`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from storage_providers.local import LocalProvider  # noqa: E402

DISPLAY = "fermions"
JOB = {"experiment_0": {"instructions": [["load", [0], []], ["measure", [0], []]],
                        "num_wires": 1, "shots": 3, "wire_order": "interleaved"}}  # fmt: skip
# Without a qlued database to copy: a table shaped like its job table (same indexes).
JOB_TABLE = """CREATE TABLE IF NOT EXISTS backends_job (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_id VARCHAR(300) NOT NULL,
    storage_provider_id BIGINT NOT NULL, display_name VARCHAR(100) NOT NULL,
    owner_id INTEGER NOT NULL, submitted_at DATETIME NOT NULL, backend_name VARCHAR(200) NOT NULL,
    status VARCHAR(20) NOT NULL, started_at DATETIME NULL, finished_at DATETIME NULL,
    shots BIGINT NULL, experiments INTEGER NULL, cancel_requested_at DATETIME NULL)"""
JOB_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS unique_job ON backends_job (storage_provider_id, job_id)",
    "CREATE INDEX IF NOT EXISTS job_provider ON backends_job (storage_provider_id)",
    "CREATE INDEX IF NOT EXISTS job_owner ON backends_job (owner_id)",
    "CREATE INDEX IF NOT EXISTS job_owner_submitted ON backends_job (owner_id, submitted_at DESC)",
    "CREATE INDEX IF NOT EXISTS job_owner_status ON backends_job (owner_id, status)",
)
INSERT = """INSERT INTO backends_job (job_id, storage_provider_id, display_name, owner_id,
    submitted_at, backend_name, status, shots, experiments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""


@dataclass(frozen=True)
class Limit:
    posts_per_s: float  # of all the processes together
    cpu_ms: float  # CPU per post (user and system), the fsyncs' included


def measure(storage: Path, ledger: Path, processes: int, seconds: float) -> Limit:
    """Posts per second that `processes` such loops manage together."""
    storage.mkdir(parents=True, exist_ok=True)
    prepare_ledger(ledger)
    start = time.time() + 1.0  # every process is up, and starts together
    children = [
        subprocess.Popen(
            [sys.executable, __file__, str(storage), str(ledger), "--child", f"{start}:{seconds}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    counts, cpu = [], 0.0
    for child in children:
        out, _ = child.communicate(timeout=seconds + 60)
        if child.returncode != 0:
            raise RuntimeError(f"a disk-limit process failed (exit {child.returncode})")
        done = json.loads(out)
        counts.append(done["posts"])
        cpu += done["cpu"]
    posts = sum(counts)
    return Limit(posts / seconds, 1000 * cpu / posts if posts else 0.0)


def prepare_ledger(path: Path) -> None:
    """A job table in `path`, as the service's (kept when there is one), in WAL mode."""
    db = sqlite3.connect(path, timeout=20)
    try:
        known = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'backends_job'").fetchone()
        if known is None:
            db.execute(JOB_TABLE)
            for index in JOB_INDEXES:
                db.execute(index)
        db.execute("PRAGMA journal_mode=WAL")
        db.commit()
    finally:
        db.close()


def child(storage: Path, ledger: Path, start: float, seconds: float) -> tuple[int, float]:
    """Posts stored in `seconds` from `start`, and the CPU seconds the loop took."""
    provider = LocalProvider("limit", storage)
    db = sqlite3.connect(ledger, timeout=20, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    owner = _first_id(db, "SELECT id FROM auth_user ORDER BY id LIMIT 1")
    storage = _first_id(db, "SELECT id FROM backends_storageproviderdb ORDER BY id LIMIT 1")
    provider.submit_job(DISPLAY, provider.new_job_id(DISPLAY, ""), JOB)  # folders made
    time.sleep(max(0.0, start - time.time()))
    end, posts, cpu = start + seconds, 0, _cpu()
    while time.time() < end:
        job_id = provider.new_job_id(DISPLAY, "")
        provider.submit_job(DISPLAY, job_id, JOB)
        row = (
            job_id,
            storage,
            DISPLAY,
            owner,
            _now(),
            f"limit_{DISPLAY}_simulator",
            "QUEUED",
            3,
            1,
        )
        db.execute("BEGIN IMMEDIATE")  # the service's transaction mode
        db.execute(INSERT, row)
        db.execute("COMMIT")  # one durable transaction, as the ledger row of a post
        posts += 1
    cpu = _cpu() - cpu
    db.close()
    return posts, cpu


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _first_id(db: sqlite3.Connection, query: str) -> int:
    try:
        found = db.execute(query).fetchone()
    except sqlite3.OperationalError:  # no such table: the stand-alone shape
        return 1
    return int(found[0]) if found else 1


def _now() -> str:
    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) + f".{time.time_ns() // 1000 % 10**6:06d}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("storage", type=Path, help="a local provider's base_path")
    parser.add_argument("ledger", type=Path, help="an SQLite file (a qlued database or new)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        start, seconds = (float(x) for x in options.child.split(":"))
        posts, cpu = child(options.storage, options.ledger, start, seconds)
        print(json.dumps({"posts": posts, "cpu": cpu}))
        return 0
    limit = measure(options.storage, options.ledger, options.processes, options.seconds)
    print(
        f"{limit.posts_per_s:.1f} posts/s with {options.processes} processes, "
        f"{limit.cpu_ms:.2f} ms CPU per post"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
