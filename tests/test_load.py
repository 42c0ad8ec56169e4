"""Under load and faults, nothing lost (issue 13): gunicorn, two spoolers, thousands of posts.

A live gunicorn (3 sync workers, DEBUG off, SQLite) and two `python -m spooler`
processes share a provider; 16 client threads post 2,000 jobs. In the middle a
gunicorn worker and a spooler are SIGKILLed (the killed spooler is replaced; its job's
lease runs out and the job goes back to the queue), and on MongoDB the database server
is stopped for ten seconds. Afterwards every post that was answered 200 has exactly one
status (DONE), one result, one finished job and one ledger row, ran to DONE exactly
once, and no document anywhere is half-written. Every other answer is the contract's
JSON. Marked `load`: tests/run_all.sh runs these once, in the SQLite pass.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import FERMIONS_CONFIG
from tests.test_operator_gunicorn import GUNICORN, LISTENING, ROOT, bare_env, manage
from tests.test_spooler_cli import SpoolerProcess

pytestmark = pytest.mark.load

JOBS = 2000
CLIENTS = 16
LEASE_SECONDS = 3
BACKEND = "alqor_fermions_simulator"
JOB = json.dumps(
    {
        "experiment_0": {
            "instructions": [["load", [0], []], ["measure", [0], []]],
            "num_wires": 1,
            "shots": 1,
        }
    }
)
POSTED_BY = 240  # seconds all posts may take
# Longer than a post can stay blocked on a socket the stopped server left open
# (MONGODB_SOCKET_TIMEOUT 5 s, then one retry's server selection of 1 s), so that posts
# begun after the stop meet a server that is still down: the 503s the test must see.
OUTAGE_SECONDS = 10
FEW_LEFT = 50  # open jobs, below which the MongoDB test looks up where each one is
# Seconds after the last post until every job is DONE: the Mongo-wire test server runs
# in Python (in this process); here the whole MongoDB test, posts included, took about
# two and a half minutes (locally, two spoolers finish about 100 jobs a second).
DONE_BY = {"local": 120, "mongodb": 480}


def error_shape(body: object) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"job_id", "status", "detail", "error_message"}
        and body["status"] == "ERROR"
        and body["detail"] == body["error_message"]
    )


@dataclass
class Lab:
    """The server, its spoolers and their logs, for one medium."""

    home: Path
    medium: str
    login: dict
    token: str
    port: int = 0
    proc: subprocess.Popen | None = None
    spoolers: list[SpoolerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/{BACKEND}/post_job"

    def start_spooler(self) -> SpoolerProcess:
        command = [sys.executable, "-m", "spooler", "--name", "alqor", "--type", self.medium]
        command += ["--login", json.dumps(self.spooler_login()), "--backends", "fermions"]
        command += ["--lease-seconds", str(LEASE_SECONDS)]
        spooler = SpoolerProcess(command, self.home / f"spooler-{len(self.spoolers)}.log")
        self.spoolers.append(spooler)
        spooler.wait_serving(timeout=30)
        return spooler

    def spooler_login(self) -> dict:
        """The spoolers' login: on MongoDB, without retryable writes.

        The Mongo-wire server under test scans (and past 10,000, sorts) every retryable
        write it remembers on each new one; a spooler's nine writes a job over 2,000
        jobs would slow it to a crawl. The service keeps the driver's default; a
        spooler's write that fails is retried by its own loop and the lease.
        """
        if self.medium != "mongodb":
            return self.login
        url = self.login["mongodb_database_url"]
        return {**self.login, "mongodb_database_url": f"{url}?retryWrites=false"}

    def workers(self) -> list[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def log(self) -> str:
        return (self.home / "gunicorn.log").read_text(errors="replace")


def _serve(home: Path, medium: str, login: dict, **settings: str) -> Lab:
    env = bare_env(
        home,
        **settings,
        QUOTA_QUEUED_JOBS="0",
        QUOTA_POSTS_PER_MINUTE="0",
        MONGODB_SERVER_SELECTION_TIMEOUT="1",
        MONGODB_SOCKET_TIMEOUT="5",
        LOG_LEVEL="WARNING",
    )
    manage(env, "migrate", "-v0")
    manage(env, "create_storage_provider", "--name", "alqor", "--type", medium,
           "--login", json.dumps(login), "--owner", "alice")  # fmt: skip
    (home / "fermions.json").write_text(json.dumps(FERMIONS_CONFIG))
    manage(env, "upload_backend_config", "--provider", "alqor", str(home / "fermions.json"))
    token = manage(env, "issue_token", "alice").splitlines()[-1]
    lab = Lab(home, medium, login, token)
    with (home / "gunicorn.log").open("wb") as log:
        lab.proc = subprocess.Popen(
            [GUNICORN, "qlued.wsgi", "-c", "qlued/gunicorn_conf.py", "-b", "127.0.0.1:0",
             "-w", "3", "--timeout", "60"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (found := LISTENING.search(lab.log())):
        assert lab.proc.poll() is None, lab.log()
        assert time.monotonic() < deadline, "gunicorn did not start in 30 s"
        time.sleep(0.05)
    lab.port = int(found.group(1))
    return lab


def _stop(lab: Lab) -> None:
    for spooler in lab.spoolers:
        if spooler.proc.poll() is None:
            spooler.terminate(timeout=30)
    if lab.proc is not None and lab.proc.poll() is None:
        lab.proc.send_signal(signal.SIGTERM)
        lab.proc.wait(timeout=30)


@dataclass
class Outcome:
    answers: list[tuple[int, object]] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)  # connection errors, by kind
    lock: threading.Lock = field(default_factory=threading.Lock)

    def done_200(self) -> list[str]:
        return [body["job_id"] for code, body in self.answers if code == 200]  # type: ignore[index]

    def count(self) -> int:
        return len(self.answers) + sum(self.failures.values())


def _post_all(lab: Lab, faults: list[tuple[float, Callable[[], None]]]) -> Outcome:
    """Post JOBS jobs from CLIENTS threads; each fault runs once that share of posts is done."""
    outcome = Outcome()
    body = json.dumps({"job": JOB, "token": lab.token})
    pending = sorted(faults, key=lambda f: f[0])
    fault_errors: list[BaseException] = []

    def post(_: int) -> None:
        try:
            response = requests.post(
                lab.url, data=body, headers={"Content-Type": "application/json"}, timeout=30
            )
            answer = (response.status_code, response.json())
        except (requests.ConnectionError, requests.Timeout) as exc:
            with outcome.lock:
                outcome.failures[type(exc).__name__] += 1
            return
        with outcome.lock:
            outcome.answers.append(answer)

    def run_faults() -> None:
        try:
            while pending:
                share, fault = pending[0]
                if outcome.count() >= share * JOBS:
                    pending.pop(0)
                    fault()
                time.sleep(0.01)
        except BaseException as exc:  # surfaced in the test below, not lost in a thread
            fault_errors.append(exc)
            pending.clear()

    injector = threading.Thread(target=run_faults)
    injector.start()
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(post, range(JOBS)))
    injector.join(timeout=60)
    assert not fault_errors, fault_errors
    assert time.monotonic() - started < POSTED_BY
    return outcome


def _kill_a_worker(lab: Lab, killed: list[int]) -> Callable[[], None]:
    def kill() -> None:
        pid = lab.workers()[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    return kill


def _kill_a_spooler(lab: Lab, killed: list[int]) -> Callable[[], None]:
    def kill() -> None:
        victim = lab.spoolers[0]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=10)
        killed.append(victim.proc.pid)
        lab.start_spooler()  # two spoolers again

    return kill


def _check_answers(outcome: Outcome, allowed: set[int]) -> None:
    codes = Counter(code for code, _ in outcome.answers)
    print(f"answers {dict(codes)}, no answer {dict(outcome.failures)}")  # the report's figures
    assert set(codes) <= {200, *allowed}, codes
    for code, body in outcome.answers:
        if code != 200:
            assert error_shape(body), (code, body)
    ids = outcome.done_200()
    assert len(ids) == len(set(ids)), "a job id was answered twice"


def _ledger(lab: Lab) -> Counter:
    with sqlite3.connect(lab.home / "data" / "db.sqlite3") as db:
        rows = db.execute("SELECT job_id FROM backends_job").fetchall()
    return Counter(row[0] for row in rows)


def _done_lines(lab: Lab) -> Counter:
    lines: Counter = Counter()
    for spooler in lab.spoolers:
        for job_id, _, outcome in spooler.job_lines():
            if outcome == "DONE":
                lines[job_id] += 1
    return lines


# SPEC §7.3 has a spooler write a job's status after moving it to `finished`. One killed
# between the two leaves a finished job, its result written, whose status still says
# INITIALIZING, and nothing repairs it yet: the reaper (storage_providers/base.py) only
# looks at jobs still in `running`. The tests below wait out such jobs, check everything
# else, and then report them as this known gap (xfail) rather than as a lost job.
KNOWN_GAP = "killed between moving a job to finished and writing its DONE status"
GAP_PATIENCE = 3 * LEASE_SECONDS + 2  # the reaper's chance to repair it


def _settle(
    view: Callable[[], dict[str, tuple[str, bool]]],
    ids: list[str],
    describe: Callable[[], str],
    within: float,
) -> set[str]:
    """Wait until every answered job is DONE; the ones left in KNOWN_GAP for GAP_PATIENCE s.

    `view()` maps each job id not DONE to (its status word, finished with a result).
    """
    deadline, stuck_since = time.monotonic() + within, None
    wanted = set(ids)
    while True:
        open_jobs = {job_id: state for job_id, state in view().items() if job_id in wanted}
        if not open_jobs:
            return set()
        if all(finished for _, finished in open_jobs.values()):
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > GAP_PATIENCE:
                return set(open_jobs)
        else:
            stuck_since = None
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(open_jobs)} jobs not DONE after {within} s: {describe()}")
        time.sleep(0.5)


def _check_leases(leases: set[str], gap: set[str], finished: set[str]) -> None:
    """Leases left behind belong to jobs that ended: the gap's, and those whose spooler was
    killed, or lost MongoDB, after writing DONE and before releasing its lease (litter
    that nothing sweeps yet; no job is held by it)."""
    assert gap <= leases
    assert leases <= finished, leases - finished
    print(f"leases left behind on ended jobs: {len(leases)}")


def _report_gap(gap: set[str]) -> None:
    if gap:
        pytest.xfail(f"{KNOWN_GAP}: {sorted(gap)} (everything else held)")


def _check_spoolers(lab: Lab, ids: list[str], killed_spoolers: int) -> None:
    """No job ran to DONE twice; a job ended without its log line only where a spooler was
    killed, or lost its storage while ending one (it retries; the job ends all the same)."""
    lines = _done_lines(lab)
    assert max(lines.values(), default=0) == 1, "a job ran to DONE twice"
    logs = "".join(s.log() for s in lab.spoolers)
    interrupted = logs.count("storage problem, retrying")
    unlogged = [i for i in ids if lines[i] == 0]
    assert len(unlogged) <= killed_spoolers + interrupted, unlogged
    assert "Traceback" not in logs


# ---- local storage ----------------------------------------------------------------------------


@pytest.fixture
def local_lab(tmp_path: Path) -> Iterator[Lab]:
    lab = _serve(tmp_path, "local", {"base_path": str(tmp_path / "storage")})
    try:
        lab.start_spooler()
        lab.start_spooler()
        yield lab
    finally:
        _stop(lab)


def test_2000_posts_with_a_worker_and_a_spooler_killed_lose_nothing_on_local_storage(local_lab):
    lab = local_lab
    base = Path(lab.login["base_path"])
    workers, spoolers = [], []

    outcome = _post_all(
        lab, [(0.3, _kill_a_worker(lab, workers)), (0.5, _kill_a_spooler(lab, spoolers))]
    )

    _check_answers(outcome, allowed=set())
    ids = outcome.done_200()
    assert len(ids) >= JOBS - CLIENTS  # only the posts the killed worker held are unanswered
    status = base / "status/fermions"
    gap = _settle(lambda: _open_jobs(base), ids, lambda: _stuck(lab, base), DONE_BY["local"])
    assert len(workers) == 1 and len(spoolers) == 1
    for job_id in ids:
        word = json.loads((status / f"{job_id}.json").read_bytes())["status"]
        assert word == ("INITIALIZING" if job_id in gap else "DONE")
        assert (base / "results/fermions" / f"{job_id}.json").is_file()
        assert (base / "jobs/finished/fermions" / f"{job_id}.json").is_file()
    assert _names(base / "jobs/queued/fermions") == set()
    assert _names(base / "jobs/running") == set()
    finished = {name[:-5] for name in _names(base / "jobs/finished/fermions")}
    _check_leases({name[:-5] for name in _names(base / "jobs/leases")}, gap, finished)
    assert _names(base / "jobs/deleted") == set()
    ledger = _ledger(lab)
    assert all(ledger[job_id] == 1 for job_id in ids)
    assert _unparsable(base) == []
    _check_spoolers(lab, ids, killed_spoolers=1)
    assert lab.log().count("Booting worker") == 4  # the master replaced the killed one
    _report_gap(gap)


def _open_jobs(base: Path) -> dict[str, tuple[str, bool]]:
    """Each job whose status is not DONE: (its status, finished with a result)."""
    found = {}
    for path in (base / "status/fermions").glob("*.json"):
        try:
            word = json.loads(path.read_bytes())["status"]
        except (OSError, ValueError):
            word = "being rewritten"
        if word != "DONE":
            name = path.name
            finished = (base / "jobs/finished/fermions" / name).is_file()
            found[path.stem] = (word, finished and (base / "results/fermions" / name).is_file())
    return found


def _stuck(lab: Lab, base: Path) -> str:
    """Where each job that is not DONE is, and what the spoolers said of it."""
    told = []
    for path in (base / "status/fermions").glob("*.json"):
        if json.loads(path.read_bytes())["status"] != "DONE":
            job_id = path.stem
            places = [str(p.relative_to(base)) for p in base.rglob(f"*{job_id}*")]
            lines = [line for s in lab.spoolers for line in s.log().splitlines() if job_id in line]
            told.append(f"{job_id} in {places}, spoolers said {lines}")
    return "; ".join(told)


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.json")} if folder.is_dir() else set()


def _unparsable(base: Path) -> list[str]:
    bad = []
    for path in base.rglob("*.json"):
        try:
            json.loads(path.read_bytes())
        except ValueError:
            bad.append(str(path))
    return bad


# ---- MongoDB ----------------------------------------------------------------------------------


@pytest.fixture
def mongo_lab(tmp_path: Path, mongo) -> Iterator[Lab]:  # type: ignore[no-untyped-def]
    # No cached configs: during the outage a post's first read fails, and that is a 503.
    lab = _serve(tmp_path, "mongodb", mongo.login(), CACHE_SECONDS="0", MONGODB_CONNECT_TIMEOUT="1")
    try:
        lab.start_spooler()
        lab.start_spooler()
        yield lab
    finally:
        _stop(lab)


def test_2000_posts_through_a_mongodb_outage_and_kills_lose_nothing(mongo_lab, mongo):
    lab = mongo_lab
    workers, spoolers = [], []

    def stop_mongodb_for_a_while() -> None:
        mongo.stop()
        time.sleep(OUTAGE_SECONDS)
        mongo.start()

    outcome = _post_all(
        lab,
        [
            (0.2, _kill_a_worker(lab, workers)),
            (0.4, _kill_a_spooler(lab, spoolers)),
            (0.6, stop_mongodb_for_a_while),
        ],
    )

    _check_answers(outcome, allowed={406, 503})
    refused = [(code, body) for code, body in outcome.answers if code != 200]
    assert 503 in {code for code, _ in refused}, "the outage was not seen"
    assert {body["detail"] for _, body in refused} <= {  # type: ignore[index]
        "The storage provider is not reachable right now. Try again later.",
        "The job could not be written to storage. Try again later.",
    }
    assert outcome.answers[-1][0] == 200, "the service did not recover by itself"
    ids = outcome.done_200()
    with mongo.client() as client:
        status = client["status"]["fermions"]
        gap = _settle(lambda: _open_mongo_jobs(client), ids, str, DONE_BY["mongodb"])
        statuses = Counter(str(d["_id"]) for d in status.find({}, {"_id": 1}))
        results = Counter(str(d["_id"]) for d in client["results"]["fermions"].find({}, {"_id": 1}))
        finished = Counter(
            str(d["_id"]) for d in client["jobs"]["finished.fermions"].find({}, {"_id": 1})
        )
        assert client["jobs"]["queued.fermions"].count_documents({}) == 0
        assert client["jobs"]["running"].count_documents({}) == 0
        leases = {str(d["_id"]) for d in client["jobs"]["leases"].find({}, {"_id": 1})}
        _check_leases(leases, gap, set(finished))
        assert {str(d["_id"]) for d in status.find({"status": {"$ne": "DONE"}})} & set(ids) == gap
    ledger = _ledger(lab)
    for job_id in ids:
        assert (statuses[job_id], results[job_id], finished[job_id], ledger[job_id]) == (1, 1, 1, 1)
    # Beyond the answered jobs, only posts that got no answer (the killed worker's) or a 406
    # (written in part when the server went away) may have left a status behind.
    extra = set(statuses) - set(ids)
    assert len(extra) <= sum(outcome.failures.values()) + sum(c == 406 for c, _ in refused)
    _check_spoolers(lab, ids, killed_spoolers=1)
    assert lab.log().count("Booting worker") == 4
    _report_gap(gap)


def _open_mongo_jobs(client) -> dict[str, tuple[str, bool]]:  # type: ignore[no-untyped-def]
    # The server under test shares this process: looking up where each of a thousand
    # open jobs is, twice a second, would starve the spoolers. Only a handful of jobs
    # can be in KNOWN_GAP, so places are looked up once few jobs are left.
    open_jobs = {
        doc["_id"]: str(doc["status"])
        for doc in client["status"]["fermions"].find({"status": {"$ne": "DONE"}}, {"status": 1})
    }
    if len(open_jobs) > FEW_LEFT:
        return {str(job_id): (word, False) for job_id, word in open_jobs.items()}
    found = {}
    for job_id, word in open_jobs.items():
        finished = client["jobs"]["finished.fermions"].count_documents({"_id": job_id}) == 1
        result = client["results"]["fermions"].count_documents({"_id": job_id}) == 1
        found[str(job_id)] = (word, finished and result)
    return found
