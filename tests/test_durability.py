"""An answered post_job survives a power cut (issue 13): what it depends on is synced first.

The proof records the system calls of a live gunicorn with `strace -f` while it
answers posts, one and then eight at once, on a sync worker and on gthread workers
(whose concurrent posts share the folders' and the ledger's fsyncs), and checks, for
each, that before the response's first byte went to the socket: the status and queue
files' data were fsynced before their names were linked in (from a named temporary
file, or a nameless one through /proc), the folders holding those names (and every
folder made for them) were fsynced after, and the ledger's SQLite write-ahead log was
synced after its last write. A flush counts only if it began after
the write it covers had returned, in whichever thread ran it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import FERMIONS_CONFIG, mongodb_provider
from tests.test_operator_gunicorn import GUNICORN, LISTENING, ROOT, bare_env, manage

JOB = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})
SYSCALLS = (
    "read,recvfrom,pwrite64,write,writev,sendto,sendmsg,mkdir,mkdirat,"
    "fsync,fdatasync,rename,renameat,renameat2,link,linkat"
)
# `1234  fsync(7</path/x>) = 0`, `1234  linkat(AT_FDCWD, "/a", AT_FDCWD, "/b", 0) = 0`
CALL = re.compile(r"^(\d+)\s+(\w+)\((.*)")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>(.*)")
UNFINISHED = " <unfinished ...>"
FD_PATH = re.compile(r"^\d+<(TCP:\[[^\]]*\]|[^>]*)>")  # a socket's is TCP:[a->b]
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def test_the_sqlite_ledger_commits_in_wal_mode_with_full_sync(db):
    if connection.vendor != "sqlite":
        pytest.skip("the PostgreSQL pass checks its own defaults")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]

    assert (mode, synchronous) == ("wal", 2)  # 2 is FULL


def test_postgresql_keeps_its_durable_defaults(db):
    if connection.vendor != "postgresql":
        pytest.skip("the SQLite pass checks its pragmas")
    with connection.cursor() as cursor:
        cursor.execute("SHOW fsync")
        fsync = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        synchronous_commit = cursor.fetchone()[0]

    assert (fsync, synchronous_commit) == ("on", "on")


def test_mongodb_writes_ask_for_the_journal(mongo):
    provider = mongodb_provider(mongo)
    try:
        from storage_providers.base import Place

        collection = provider._collection(Place.STATUS, "fermions")  # type: ignore[attr-defined]
        assert provider.client.write_concern.document == {"j": True}  # type: ignore[attr-defined]
        assert collection.write_concern.document == {"j": True}
        assert collection.write_concern.acknowledged
    finally:
        provider.close()


# ---- the order of system calls of one post ----------------------------------------------------


@dataclass
class Call:
    pid: str  # the thread's
    name: str
    args: str
    start: int  # the line of the trace where it began
    end: int  # and where it returned

    def fd_path(self) -> str:
        found = FD_PATH.match(self.args)
        return found.group(1) if found else ""

    def strings(self) -> list[str]:
        return QUOTED.findall(self.args)


@pytest.fixture(
    params=[["-w", "1"], ["-w", "2", "--worker-class", "gthread", "--threads", "4"]],
    ids=["sync", "gthread"],
)
def workers(request: pytest.FixtureRequest) -> list[str]:
    """One sync worker, and gthread workers whose concurrent posts share fsyncs."""
    return list(request.param)


@pytest.fixture
def traced_server(tmp_path: Path, workers: list[str]) -> Iterator[tuple[int, str, Path]]:
    if shutil.which("strace") is None:
        pytest.fail("strace is needed (apt-get install strace)")
    env = bare_env(tmp_path)
    manage(env, "migrate", "-v0")
    login = json.dumps({"base_path": str(tmp_path / "storage")})
    manage(env, "create_storage_provider", "--name", "alqor", "--type", "local",
           "--login", login, "--owner", "alice")  # fmt: skip
    (tmp_path / "fermions.json").write_text(json.dumps(FERMIONS_CONFIG))
    manage(env, "upload_backend_config", "--provider", "alqor", str(tmp_path / "fermions.json"))
    token = manage(env, "issue_token", "alice").splitlines()[-1]
    trace = tmp_path / "strace.log"
    log = tmp_path / "gunicorn.log"
    command = ["strace", "-f", "-qq", "-yy", "-s", "64", "-o", str(trace), "-e", SYSCALLS]
    command += [GUNICORN, "qlued.wsgi", "-c", "qlued/gunicorn_conf.py", "-b", "127.0.0.1:0"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, *workers, "--timeout", "120"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := LISTENING.search(log.read_text())):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not start under strace in 60 s"
            time.sleep(0.1)
        yield int(found.group(1)), token, trace
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # strace, gunicorn and its worker
        proc.wait(timeout=60)


def _post(port: int, token: str) -> str:
    body = json.dumps({"job": JOB, "token": token}).encode()
    head = (
        "POST /api/v2/alqor_fermions_simulator/post_job HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Connection: close\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(head.encode() + b"\r\n" + body)
        received = b""
        while block := conn.recv(65536):
            received += block
    assert received.startswith(b"HTTP/1.1 200"), received
    return str(json.loads(received.partition(b"\r\n\r\n")[2])["job_id"])


def _calls(trace: Path) -> list[Call]:
    """Every call in the order they returned; one that another thread's call interrupted
    (`<unfinished ...>`, then `<... name resumed>`) joined into one."""
    calls: list[Call] = []
    unfinished: dict[str, Call] = {}
    for n, line in enumerate(trace.read_text(errors="replace").splitlines()):
        if resumed := RESUMED.match(line):
            pid, name, rest = resumed.groups()
            began = unfinished.pop(pid, None)
            if began is not None and began.name == name:
                began.args, began.end = began.args + rest, n
                calls.append(began)
        elif found := CALL.match(line):
            pid, name, args = found.groups()
            if args.endswith(UNFINISHED):
                unfinished[pid] = Call(pid, name, args.removesuffix(UNFINISHED), n, n)
            else:
                calls.append(Call(pid, name, args, n, n))
    return calls


def _window(calls: list[Call], job_id: str) -> tuple[list[Call], str]:
    """The calls of every thread that began after the request making `job_id` was read
    and returned before its answer was sent (a flush another thread ran for it is among
    them), and the thread that answered it."""
    sent = ("sendto", "write", "writev", "sendmsg")
    quoted = f'"job_id\\":\\"{job_id}\\"'  # as strace prints the answer's body
    body = next(c for c in calls if c.name in sent and "TCP:" in c.args and quoted in c.args)
    socket = body.fd_path()  # the connection: its request was read from it
    on_socket = [c for c in calls if c.fd_path() == socket and c.end <= body.end]
    answer = max((c for c in on_socket if c.name in sent and "HTTP/1.1 200" in c.args),
                 key=lambda c: c.end)  # fmt: skip
    request = max(
        (c for c in on_socket if c.name in ("read", "recvfrom") and "POST /api/" in c.args),
        key=lambda c: c.end,
    )
    window = [c for c in calls if request.end < c.start and c.end < answer.start]
    return window, answer.pid


def _synced(window: list[Call], path: str, after: Call) -> bool:
    """Whether a flush of `path` began after `after` had returned."""
    return any(
        c.name in ("fsync", "fdatasync") and c.fd_path() == path and c.start > after.end
        for c in window
    )


def _check_file(window: list[Call], target: str) -> None:
    """`target` was linked or renamed in from a temporary file synced before, then its folder."""
    named = [
        c
        for c in window
        if c.name in ("link", "linkat", "rename", "renameat", "renameat2")
        and c.strings()
        and c.strings()[-1] == target
    ]
    assert named, f"{target} was not written in this request"
    link = named[-1]
    assert any(
        c.name in ("fsync", "fdatasync") and _is_source(c, link) and c.end < link.start
        for c in window
    ), f"the data of {target} was not synced before its name"
    assert _synced(window, str(Path(target).parent), link), f"the folder of {target} not synced"


def _is_source(flush: Call, link: Call) -> bool:
    """Whether `flush` synced the file that `link` names: a named temporary file, or a
    nameless one (O_TMPFILE) linked in through /proc as `self/fd/N` by the same thread."""
    source = link.strings()[0]
    if not source.startswith("self/fd/"):
        return flush.fd_path() == source
    folder = str(Path(link.strings()[-1]).parent)
    fd = source.removeprefix("self/fd/")
    return flush.pid == link.pid and flush.args.startswith(f"{fd}<{folder}/#")


def _check_folders_made(window: list[Call], base: str) -> None:
    for call in window:
        if call.name in ("mkdir", "mkdirat") and call.args.find(base) >= 0 and "= 0" in call.args:
            made = next(s for s in call.strings() if s.startswith(base))
            assert _synced(window, str(Path(made).parent), call), f"{made} not recorded durably"


def _check_ledger(window: list[Call], thread: str) -> None:
    wal = [
        c
        for c in window
        if c.name == "pwrite64" and c.fd_path().endswith("-wal") and c.pid == thread
    ]
    assert wal, "the ledger row was not written in this request"
    last = max(wal, key=lambda c: c.end)
    assert _synced(window, last.fd_path(), last), "the ledger's log was not synced"


def test_an_answered_post_was_made_durable_before_its_answer(traced_server, tmp_path):
    port, token, trace = traced_server
    first = _post(port, token)  # it makes the folders
    with ThreadPoolExecutor(8) as pool:  # at once: on gthread workers they share fsyncs
        together = list(pool.map(lambda _: _post(port, token), range(8)))
    time.sleep(0.5)  # strace writes its log as the calls return
    calls = _calls(trace)
    base = str(tmp_path / "storage")

    for job_id in (first, *together):
        window, thread = _window(calls, job_id)
        _check_file(window, f"{base}/status/fermions/{job_id}.json")
        _check_file(window, f"{base}/jobs/queued/fermions/{job_id}.json")
        _check_folders_made(window, base)
        _check_ledger(window, thread)
