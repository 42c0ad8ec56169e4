"""A throw-away qlued install for the benchmarks: data folder, servers, spoolers, teardown.

Everything lives in one temporary folder and every process is started in its own
session, so `Scratch.close()` can end exactly what it started (server workers and
wrk included) and remove the folder, also after Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).resolve().parents[2] / "shared/bench/qlued_bench.py"
PYTHON = sys.executable
BIN = Path(PYTHON).parent
PROVIDER = "alqor"
# Scratch installs go where qlued keeps its data by default (git ignores it), not into
# /tmp: on some machines creating files in /tmp is several times slower, which would
# be measured as if it were qlued's cost.
DATA = ROOT / "data"
# Settings the benchmarks must see at their defaults, whatever the caller's shell holds.
RESET = ("CACHE_SECONDS", "BASE_URL", "T_TIMEOUT", "MAX_REQUEST_BYTES", "DEFAULT_STORAGE")
RESET += ("DJANGO_SETTINGS_MODULE", "LOG_LEVEL", "ALLOWED_HOSTS")
TICK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark could not be set up or run; the text says what to look at."""


@dataclass
class Server:
    """A gunicorn master we started, and where it listens."""

    proc: subprocess.Popen
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def say(text: str) -> None:
    """Progress on stderr, so that stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def add_workdir_option(parser: argparse.ArgumentParser) -> None:
    """Where a benchmark puts its scratch install."""
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DATA,
        help="where the scratch folder goes (default: %(default)s)",
    )


def raise_on_sigterm() -> None:
    """Let SIGTERM and SIGHUP unwind like Ctrl-C, so teardown runs.

    SIGINT gets Python's own handler even when the shell started us with it
    ignored (a background job), so Ctrl-C or `kill -INT` always tears down.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def guarded(body: Callable[[], int]) -> int:
    """A benchmark's exit status: `body()`'s, 1 after a BenchError, 130 after Ctrl-C.

    The scratch install is torn down inside `body` (by its `with Scratch`), before the
    message is printed.
    """
    try:
        return body()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped and removed", file=sys.stderr)
        return 130


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(method: str, url: str, body: dict | None = None) -> tuple[int | None, Any]:
    """One request; (status, parsed JSON or None). Connection failures give status None."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError:
        return None, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def json_ids(folder: Path) -> set[str]:
    """The ids of the `*.json` documents in a storage folder."""
    try:
        with os.scandir(folder) as entries:
            return {e.name[:-5] for e in entries if e.name.endswith(".json")}
    except FileNotFoundError:
        return set()


def read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def children(pid: int) -> list[int]:
    """The direct children of a process (a gunicorn master's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0


def _in_sessions(sessions: set[int]) -> dict[int, list[str]]:
    """Every live process of these sessions, with its /proc stat fields."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields is not None and int(fields[3]) in sessions:
                found[int(entry.name)] = fields
    return found


def session_cpu_seconds(sessions: set[int]) -> float:
    """CPU of every process in these sessions, reaped children (wrk) included."""
    ticks = sum(sum(int(f) for f in fields[11:15]) for fields in _in_sessions(sessions).values())
    return ticks / TICK


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent in processes (all cores), stolen time included.

    Interrupt time is left out: loopback traffic puts ours there, unattributed.
    """
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = values
    return (user + nice + system + steal) / TICK


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


class Scratch:
    """A temporary data folder with its SQLite database, storage and processes."""

    def __init__(self, prefix: str, workdir: Path = DATA) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))
        self.storage = self.dir / "storage"
        self.env = {k: v for k, v in os.environ.items() if k not in RESET}
        self.env.update(
            DEBUG="false",
            SECRET_KEY=f"bench-{secrets.token_hex(24)}",
            DATABASE_URL=f"sqlite:///{self.dir / 'db.sqlite3'}",
            QLUED_DATA_DIR=str(self.dir / "data"),
            PYTHONUNBUFFERED="1",
            # one token posts thousands of jobs a minute here: the per-user quotas are off
            QUOTA_QUEUED_JOBS="0",
            QUOTA_POSTS_PER_MINUTE="0",
        )
        self._procs: list[subprocess.Popen] = []
        self._logs: dict[int, Path] = {}

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- set-up ------------------------------------------------------------------

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        """A manage.py command (`env`: another install's settings); its stdout, or BenchError."""
        done = subprocess.run(
            [PYTHON, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"manage.py {args[0]} failed:\n{done.stderr.strip()[-2000:]}")
        return done.stdout

    def install(self, owner: str = "bench") -> str:
        """Database, the local provider, the simulators' configs and a token (returned)."""
        login = json.dumps({"base_path": str(self.storage)})
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        self.manage(
            "create_storage_provider", "--name", PROVIDER, "--type", "local",
            "--login", login, "--owner", owner,
        )  # fmt: skip
        self.manage("setup_demo", "--name", PROVIDER, "--base-path", str(self.storage))
        return self.manage("issue_token", owner).strip().splitlines()[-1].strip()

    # ---- processes ---------------------------------------------------------------

    def start(
        self, name: str, cmd: list[str], env: dict | None = None, **kw: Any
    ) -> subprocess.Popen:
        """A process in a session of its own, its output in `<name>.log` unless redirected."""
        path = self.dir / f"{name}.log"
        with path.open("ab") as log:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", subprocess.STDOUT)
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env={**self.env, **(env or {})}, start_new_session=True, **kw
            )
        self._procs.append(proc)
        self._logs[proc.pid] = path
        return proc

    @property
    def sessions(self) -> set[int]:
        """The session ids of the processes we started (each leads its own)."""
        return {proc.pid for proc in self._procs}

    def serve(
        self, name: str, settings_module: str, workers: int = 2, env: dict[str, str] | None = None
    ) -> Server:
        """gunicorn with the project's config, sync workers, on a free loopback port."""
        port = free_port()
        cmd = [
            str(BIN / "gunicorn"), "qlued.wsgi", "-c", "qlued/gunicorn_conf.py",
            "-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT),
            # gunicorn 27's default control socket is one per user: two servers would share it
            "--control-socket", str(self.dir / f"{name}.ctl"),
        ]  # fmt: skip
        proc = self.start(name, cmd, {**(env or {}), "DJANGO_SETTINGS_MODULE": settings_module})
        return Server(proc, port)

    def spooler(
        self,
        name: str,
        backends: str,
        base_path: Path | None = None,
        *,
        provider: str = PROVIDER,
        storage_type: str = "local",
        login: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        """`python -m spooler`: on the local provider unless a type and its login are given."""
        login = login or {"base_path": str(base_path or self.storage)}
        cmd = [
            PYTHON, "-m", "spooler", "--name", provider, "--type", storage_type,
            "--login", json.dumps(login), "--backends", backends,
        ]  # fmt: skip
        return self.start(name, cmd)

    def wait_http(self, url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
        """Until `url` answers 200; BenchError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"{url} died at start:\n{self.tail(proc)}")
            status, _ = http_json("GET", url)
            if status == 200:
                return
            time.sleep(0.2)
        raise BenchError(f"{url} did not answer 200 within {timeout:.0f} s:\n{self.tail(proc)}")

    def wait_log(self, proc: subprocess.Popen, text: str, timeout: float = 60) -> None:
        """Until the process's log holds `text` (a spooler's "serving" line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"process {proc.args[:3]} exited:\n{self.tail(proc)}")
            if text in self.tail(proc, 20_000):
                return
            time.sleep(0.05)
        raise BenchError(f"no {text!r} in the log within {timeout:.0f} s:\n{self.tail(proc)}")

    def tail(self, proc: subprocess.Popen, size: int = 3000) -> str:
        """The end of a process's log file."""
        path = self._logs.get(proc.pid)
        if path is None or not path.exists():
            return ""
        return path.read_bytes()[-size:].decode("utf-8", "replace")

    def stop(self, proc: subprocess.Popen, timeout: float = 15) -> None:
        """SIGTERM to the process's session (resumed if stopped), SIGKILL if it lingers."""
        for signum in (signal.SIGTERM, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        for pid in _in_sessions({proc.pid}):  # anything that outlived its leader
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc in self._procs:
            self._procs.remove(proc)

    def close(self) -> None:
        """End every process we started (newest first) and remove the folder."""
        while self._procs:
            self.stop(self._procs[-1])
        shutil.rmtree(self.dir, ignore_errors=True)
