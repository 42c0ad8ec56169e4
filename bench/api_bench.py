"""API load benchmark: every v2 endpoint against a framework floor, with wrk.

    .venv/bin/python bench/api_bench.py [--duration 8] [--concurrency 16] [--json FILE]

Sets up a scratch install (SQLite, a local provider `alqor`, the simulators'
configs, a token), serves it with gunicorn (2 sync workers, DEBUG off) and, beside
it, the floor: the same settings and middleware with one constant django-ninja
endpoint (bench/floor_urls.py). The shared driver ../shared/bench/qlued_bench.py
loads each endpoint in turn.

The job the driver polls (its preflight post) is run by a real spooler before any
load starts: the driver is paused (SIGSTOP) from the moment that job appears
until the spooler has finished it and stopped, so no load shares the CPU with a
spooler. Afterwards the answered post_jobs are checked against the files on disk
and the ledger, worker memory is compared with the floor's, and one table is
printed. Everything is removed at the end, also on Ctrl-C.

The machine may be shared, so besides req/s each load is metered from /proc: the
CPU the serving workers spent per request (its ratio to the floor's hardly
depends on other load), and the share of the CPUs that processes outside this
benchmark took meanwhile (when that is high, the req/s ratios are not to be
trusted).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness import (
    DRIVER,
    PYTHON,
    BenchError,
    Scratch,
    Server,
    add_workdir_option,
    children,
    cpu_seconds,
    json_ids,
    machine_busy_seconds,
    raise_on_sigterm,
    read_json,
    rss_kib,
    say,
    session_cpu_seconds,
)

BACKEND = "alqor_fermions_simulator"  # the driver's job is a fermions job
DISPLAY = "fermions"
TARGETS = {
    "get_config": 0.7,
    "get_backend_status": 0.7,
    "backends": 0.7,
    "get_job_status": 0.5,
    "get_job_result": 0.5,
    "post_job": 0.35,
}
RSS_TARGET = 1.3
BUSY_WARNING = 10.0  # % of the CPUs taken by others during a load: its req/s is suspect
# The floor is measured three times, spread over the run, and each ratio is to their
# mean; post_job runs last, so the reads see small folders.
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
    server_cpu: float  # CPU seconds of the serving gunicorn (master and workers)
    others: float  # CPU seconds of processes outside this benchmark


class Meter(threading.Thread):
    """Echoes the driver's progress lines and brackets each load with CPU readings."""

    def __init__(self, stream: IO[str], servers: dict[str, Server], scratch: Scratch) -> None:
        super().__init__(daemon=True)
        self.stream, self.servers, self.scratch = stream, servers, scratch
        self.windows: list[Window] = []

    def run(self) -> None:
        opened: tuple[str, tuple[float, float, float, float]] | None = None
        for line in self.stream:
            sys.stderr.write(line)
            started = LOAD_START.match(line)
            if started:
                name = started.group(1)
                opened = (name, self._reading(name))
            elif line.lstrip().startswith("->") and opened is not None:
                name, before = opened
                after = self._reading(name)
                wall, busy, ours, server = (a - b for a, b in zip(after, before, strict=True))
                self.windows.append(Window(name, wall, server, max(0.0, busy - ours)))
                opened = None

    def _reading(self, name: str) -> tuple[float, float, float, float]:
        server = self.servers["floor" if name == "floor" else "api"]
        serving = [server.proc.pid, *children(server.proc.pid)]
        ours = session_cpu_seconds(self.scratch.sessions) + cpu_seconds(os.getpid())
        return (
            time.monotonic(),
            machine_busy_seconds(),
            ours,
            sum(cpu_seconds(pid) for pid in serving),
        )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_on_sigterm()
    if not DRIVER.exists():
        print(f"error: the shared driver is missing: {DRIVER}", file=sys.stderr)
        return 2
    try:
        with Scratch("qlued_api_bench_", options.workdir) as scratch:
            run(scratch, options)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped and removed", file=sys.stderr)
        return 130
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--json", type=Path, help="also keep the driver's raw results here")
    add_workdir_option(parser)
    return parser.parse_args(argv)


def run(scratch: Scratch, options: argparse.Namespace) -> None:
    say("setting up a scratch install")
    token = scratch.install()
    servers = {
        "api": scratch.serve("api", "qlued.settings"),
        "floor": scratch.serve("floor", "bench.floor_settings"),
    }
    floor_url = f"{servers['floor'].base}/api/v2/floor"
    scratch.wait_http(f"{servers['api'].base}/api/v2/backends", servers["api"].proc)
    scratch.wait_http(floor_url, servers["floor"].proc)
    spooler = scratch.spooler("spooler", DISPLAY)
    scratch.wait_log(spooler, "serving ")

    status_dir = scratch.storage / "status" / DISPLAY
    before = json_ids(status_dir)
    out = scratch.dir / "driver.json"
    say(f"driving {len(ORDER)} endpoint runs, {options.duration} s each, with {DRIVER.name}")
    command = driver_command(options, servers["api"], token, floor_url, scratch, out)
    driver = scratch.start(
        "driver", command, {"TMPDIR": str(scratch.dir)}, stderr=subprocess.PIPE, text=True
    )
    meter = Meter(driver.stderr, servers, scratch)
    meter.start()
    done_job, overlapped = finish_first_job(scratch, driver, spooler, status_dir, before)
    budget = len(ORDER) * (options.duration + 30) + 60  # the driver bounds each load itself
    try:
        rc = driver.wait(budget)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the driver did not finish within {budget} s") from None
    meter.join(5)
    if rc != 0 or not out.exists():
        raise BenchError(f"the driver failed (exit {rc}); see its output above")
    if options.json:
        options.json.write_bytes(out.read_bytes())
    results = json.loads(out.read_text())["results"]
    memory = {name: worker_rss(server) for name, server in servers.items()}
    report(results, meter.windows, memory, options)
    print_checks(results, scratch, done_job, overlapped)


def driver_command(
    options: argparse.Namespace,
    api: Server,
    token: str,
    floor_url: str,
    scratch: Scratch,
    out: Path,
) -> list[str]:
    return [
        PYTHON, str(DRIVER), "--base", api.base, f"--token={token}", "--backend", BACKEND,
        "--floor", floor_url, "--endpoints", ",".join(ORDER),
        "--storage-base", str(scratch.storage), "--display-name", DISPLAY,
        "--duration", str(options.duration), "--concurrency", str(options.concurrency),
        "--threads", str(options.threads), "--engine", "wrk", "--json", str(out),
    ]  # fmt: skip


def finish_first_job(
    scratch: Scratch,
    driver: subprocess.Popen,
    spooler: subprocess.Popen,
    status_dir: Path,
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
        new = json_ids(status_dir) - before
    os.killpg(driver.pid, signal.SIGSTOP)
    try:
        overlapped = bool(children(driver.pid))
        job_id: str | None = min(new)
        while read_json(status_dir / f"{job_id}.json").get("status") != "DONE":
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


# ---- report ----------------------------------------------------------------------


def report(
    results: list[dict],
    windows: list[Window],
    memory: dict[str, dict[int, int]],
    options: argparse.Namespace,
) -> None:
    metered = [w for w, r in zip(windows, results, strict=False) if w.name == r["name"]]
    if len(metered) != len(results):
        metered = []  # the progress lines did not match: leave the CPU columns out
    cpu = [cpu_ms(w, r) for w, r in zip(metered, results, strict=True)] or [0.0] * len(results)
    floor_rps = mean(r["rps"] for r in results if r["name"] == "floor")
    floor_cpu = mean(c for c, r in zip(cpu, results, strict=True) if r["name"] == "floor")
    print()
    print(
        f"qlued API vs framework floor: gunicorn 2 sync workers each, wrk {options.threads} "
        f"threads, {options.concurrency} connections, {options.duration} s per endpoint"
    )
    print()
    print(
        f"{'endpoint':<19}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'x floor':>8}"
        f"{'target':>8}  {'result':<7}{'cpu ms':>7}{'x floor':>8}{'others':>7}"
    )
    missed, suspect = [], []
    for i, r in enumerate(results):
        ratio = r["rps"] / floor_rps if floor_rps else 0.0
        target = TARGETS.get(r["name"])
        goal = f">= {target:.2f}" if target is not None else ""
        verdict = ""
        if target is not None:
            verdict = "pass" if ratio >= target and r["non2xx"] == 0 else "FAIL"
            if verdict == "FAIL":
                missed.append(r["name"])
        tail = ""
        if metered:
            others = 100 * metered[i].others / (os.cpu_count() or 1) / metered[i].wall
            if others > BUSY_WARNING:
                suspect.append(r["name"])
            cpu_ratio = floor_cpu / cpu[i] if cpu[i] else 0.0
            tail = f"{cpu[i]:>7.2f}{cpu_ratio:>8.2f}{others:>6.0f}%"
        print(
            f"{r['name']:<19}{r['rps']:>8.1f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
            f"{r['non2xx']:>8}{ratio:>8.2f}{goal:>8}  {verdict:<7}{tail}"
        )
    missed += print_memory(memory)
    print()
    print(
        "x floor: req/s over the mean of the floor runs (the verdict). cpu ms: CPU of the\n"
        "serving gunicorn per request; its x floor is the floor's cpu ms over this one's, a\n"
        "steadier estimate for CPU-bound endpoints. others: share of all CPUs taken by\n"
        "processes outside this benchmark during the load (0% on a quiet machine)."
    )
    print()
    print("missed: " + ", ".join(missed) if missed else "every target met")
    if suspect:
        print(
            f"warning: other processes took over {BUSY_WARNING:.0f}% of the CPUs during "
            f"{', '.join(dict.fromkeys(suspect))}: those req/s are not reliable"
        )


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


def print_checks(
    results: list[dict], scratch: Scratch, done_job: str | None, overlapped: bool
) -> None:
    print()
    status = preflight(results, "get_job_status").get("status")
    operational = preflight(results, "get_backend_status").get("operational")
    print(
        f"polled job {done_job or '(none: not finished in time)'}: get_job_status answered "
        f"{status}; get_backend_status operational: {operational}"
    )
    if overlapped:
        print("warning: wrk had started before the spooler finished; the first load overlapped")
    job_check = named(results, "post_job").get("job_check") or {}
    if job_check:
        print(
            f"post_job under load: {job_check['responses_2xx']} answered 2xx with "
            f"{job_check['ids_2xx']} job ids; of those, without a status file "
            f"{job_check['lost_status']}, without a queue file {job_check['lost_queue']}\n"
            f"  (jobs written for requests cut at the end of the load, never answered: "
            f"{job_check['unreported_files']})"
        )
    ledger = ledger_check(scratch)
    print(
        "every post of the run, ledger vs disk: " + ", ".join(f"{k} {v}" for k, v in ledger.items())
    )


def ledger_check(scratch: Scratch) -> dict[str, int]:
    """Every job in the ledger has its status file and its job file (queued or finished)."""
    with sqlite3.connect(scratch.dir / "db.sqlite3") as db:
        rows = db.execute("SELECT job_id FROM backends_job WHERE display_name = ?", (DISPLAY,))
        ledger = {row[0] for row in rows}
    jobs = scratch.storage / "jobs"
    status = json_ids(scratch.storage / "status" / DISPLAY)
    placed = json_ids(jobs / "queued" / DISPLAY) | json_ids(jobs / "finished" / DISPLAY)
    return {
        "ledger rows": len(ledger),
        "status files": len(status),
        "job files": len(placed),
        "rows without status": len(ledger - status),
        "rows without job file": len(ledger - placed),
        "files without row": len((status | placed) - ledger),
    }


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
