"""The spooler commands as operators run them: real processes on a shared folder (SPEC §9).

`python -m spooler` and `manage.py run_spooler` are started as subprocesses; the test
queues jobs into their folder as post_job does, reads their log, and signals them.
Every wait is bounded.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from argparse import Namespace
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from spooler.__main__ import main
from spooler.cli import build_spooler
from spooler.signing import generate_private_jwk
from spooler.simulators import BACKENDS
from spooler.simulators.serving import SPOOLER_OWNED
from spooler.worker import Spooler
from storage_providers import LocalProvider, NotFound

ROOT = Path(__file__).resolve().parent.parent
JOB_LINE = re.compile(r"job ([0-9a-f]{24}) (\w+) (DONE|ERROR|LOST .*) (\d+\.\d+) s$")
FINAL = {"DONE", "ERROR"}


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail the test naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class SpoolerProcess:
    """One spooler command running in a subprocess, its log going to a file."""

    def __init__(self, command: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )

    @classmethod
    def python_m(cls, base: Path, log_path: Path, *flags: str) -> SpoolerProcess:
        login = json.dumps({"base_path": str(base)})
        command = [sys.executable, "-m", "spooler", "--name", "alqor", "--type", "local"]
        return cls([*command, "--login", login, *flags], log_path)

    def log(self) -> str:
        return self.log_path.read_text()

    def job_lines(self) -> list[tuple[str, str, str]]:
        """(job id, backend, outcome) of every job line in the log."""
        found = (JOB_LINE.search(line) for line in self.log().splitlines())
        return [match.groups()[:3] for match in found if match]

    def wait_serving(self, timeout: float = 15) -> None:
        wait_until(
            lambda: " serving " in self.log() or self.proc.poll() is not None,
            timeout,
            "the spooler to announce its backends",
        )
        assert self.proc.poll() is None, self.log()

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM, and the exit status once it is out."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def queue(base: Path) -> LocalProvider:
    return LocalProvider("alqor", base)


@pytest.fixture
def start(tmp_path: Path, base: Path) -> Iterator[Callable[..., SpoolerProcess]]:
    """Start `python -m spooler` on `base`; whatever is still running at the end is killed."""
    started: list[SpoolerProcess] = []

    def run(*flags: str) -> SpoolerProcess:
        log_path = tmp_path / f"spooler-{len(started)}.log"
        process = SpoolerProcess.python_m(base, log_path, *flags)
        started.append(process)
        return process

    yield run
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)


def spin_job(atoms: int = 5, shots: int = 3) -> dict:
    return {
        "experiment_0": {
            "instructions": [["load", [0], [atoms]], ["rlx", [0], [math.pi]], ["measure", [0], []]],
            "num_wires": 1,
            "shots": shots,
            "wire_order": "sequential",
        }
    }


def slow_job(experiments: int) -> dict:
    """Four wires of 7 atoms (dimension 4096), 600 gates and 10,000 shots per experiment.

    About 0.15 s per experiment on a laptop: long enough to be caught in the middle.
    """
    instructions = [["load", [wire], [7]] for wire in range(4)]
    for i in range(300):
        instructions += [["rlx", [i % 4], [0.3]], ["rlxly", [i % 3, i % 3 + 1], [0.2]]]
    instructions += [["measure", [wire], []] for wire in range(4)]
    experiment = {
        "instructions": instructions,
        "num_wires": 4,
        "shots": 10_000,
        "wire_order": "sequential",
    }
    return {f"experiment_{n}": experiment for n in range(experiments)}


def submit(provider: LocalProvider, display: str, job: dict) -> str:
    job_id = provider.new_job_id(display, "")
    provider.submit_job(display, job_id, job)
    return job_id


def status_of(provider: LocalProvider, display: str, job_id: str) -> str:
    try:
        return str(provider.get_status(display, job_id)["status"])
    except NotFound:
        return "MISSING"


def ids_in(base: Path, folder: str) -> list[str]:
    path = base / folder
    return sorted(p.stem for p in path.glob("*.json")) if path.exists() else []


# ---- one spooler --------------------------------------------------------------------------


def test_the_spooler_logs_what_it_serves_and_one_line_per_job(start, queue):
    spooler = start("--backends", "singlequdit,fermions")
    spooler.wait_serving()
    good = submit(queue, "singlequdit", spin_job())
    bad = submit(queue, "singlequdit", spin_job(atoms=501))

    wait_until(
        lambda: {status_of(queue, "singlequdit", j) for j in (good, bad)} <= FINAL,
        15,
        "both jobs to end",
    )

    assert spooler.terminate() == 0
    log = spooler.log()
    assert (
        "serving alqor_singlequdit_simulator, alqor_fermions_simulator "
        "on local storage alqor (lease 600 s)"
    ) in log
    assert spooler.job_lines() == [
        (good, "singlequdit", "DONE"),
        (bad, "singlequdit", "ERROR"),
    ]
    assert log.rstrip().endswith("stopped")
    assert "Traceback" not in log


def test_sigterm_lets_the_current_job_finish_holding_its_lease_and_exits_0(start, base, queue):
    slow = submit(queue, "multiqudit", slow_job(16))
    waiting = submit(queue, "multiqudit", spin_job())
    first = start("--backends", "multiqudit", "--lease-seconds", "1")
    wait_until(lambda: slow in ids_in(base, "jobs/running"), 15, "the slow job to be claimed")
    first.proc.send_signal(signal.SIGTERM)
    # A second spooler with the same short lease would take the job over if the first
    # stopped renewing its lease while it finishes.
    second = start("--backends", "singlequdit", "--lease-seconds", "1")

    assert first.proc.wait(timeout=30) == 0

    assert first.job_lines() == [(slow, "multiqudit", "DONE")]
    assert status_of(queue, "multiqudit", slow) == "DONE"
    assert ids_in(base, "jobs/finished/multiqudit") == [slow]
    assert ids_in(base, "jobs/queued/multiqudit") == [waiting]  # not started after SIGTERM
    assert second.terminate() == 0
    assert second.job_lines() == []


def test_a_signing_spooler_publishes_its_public_key_on_start(start, base, tmp_path):
    key_file = tmp_path / "key.jwk"
    key_file.write_text(json.dumps(generate_private_jwk("lab-key")))
    spooler = start("--backends", "fermions", "--private-jwk", str(key_file))
    spooler.wait_serving()

    assert spooler.terminate() == 0
    assert "signing as lab-key" in spooler.log()
    assert ids_in(base, "backends/public_keys") == ["lab-key"]
    config = json.loads((base / "backends/configs/fermions.json").read_text())
    assert (config["payload"]["sign"], config["header"]["kid"]) == (True, "lab-key")


# ---- bad input ----------------------------------------------------------------------------

LOCAL = json.dumps({"base_path": "{base}"})
BAD_INPUT = {
    "unknown-backend": (
        ["--type", "local", "--login", LOCAL, "--backends", "singlequdit,bosons"],
        "error: Unknown backends ['bosons']; choose from singlequdit, multiqudit, fermions.",
    ),
    "login-not-json": (
        ["--type", "local", "--login", "{base_path: /tmp}"],
        "error: --login is not valid JSON.",
    ),
    "login-of-another-type": (
        ["--type", "local", "--login", '{"app_key": "k"}'],
        "error: Invalid local login: 'app_key' is not expected; 'base_path' is missing.",
    ),
    "unknown-type": (
        ["--type", "ftp", "--login", LOCAL],
        "error: argument --type: invalid choice: 'ftp' (choose from 'dropbox', 'mongodb', 'local')",
    ),
    "type-not-in-this-build": (
        [
            "--type",
            "dropbox",
            "--login",
            json.dumps({"app_key": "k", "app_secret": "s", "refresh_token": "r"}),
        ],
        "error: Storage type dropbox is not available in this build.",
    ),
    "lease-not-a-number": (
        ["--type", "local", "--login", LOCAL, "--lease-seconds", "soon"],
        "error: argument --lease-seconds: invalid float value: 'soon'",
    ),
    "lease-not-positive": (
        ["--type", "local", "--login", LOCAL, "--lease-seconds", "0"],
        "error: --lease-seconds must be a positive number of seconds.",
    ),
    "lease-nan": (
        ["--type", "local", "--login", LOCAL, "--lease-seconds", "nan"],
        "error: --lease-seconds must be a positive number of seconds.",
    ),
    "key-file-missing": (
        ["--type", "local", "--login", LOCAL, "--private-jwk", "{base}/nokey.jwk"],
        "error: Cannot use {base}/nokey.jwk as a private key: "
        "[Errno 2] No such file or directory: '{base}/nokey.jwk'",
    ),
}


def run_main(argv: list[str]) -> int | None:
    """`python -m spooler` in a thread of this process, for input refused before any work.

    In a thread, so that a command line wrongly accepted cannot install its signal
    handlers here and spool forever: it fails (signals need the main thread) or times out.
    """
    outcome: list[int] = []

    def call() -> None:
        try:
            outcome.append(main(argv))
        except SystemExit as leaving:
            outcome.append(int(leaving.code or 0))

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=10)
    return outcome[0] if outcome else None


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_status_1_and_touches_nothing(
    base, capsys, case, dropbox_not_built
):
    flags, line = BAD_INPUT[case]
    argv = ["--name", "alqor", *(flag.replace("{base}", str(base)) for flag in flags)]

    exit_status = run_main(argv)

    assert (exit_status, capsys.readouterr().err) == (1, line.replace("{base}", str(base)) + "\n")
    assert not base.exists()


def test_a_real_process_answers_bad_input_with_one_line_and_no_traceback(base):
    cases = ["unknown-type", "unknown-backend"]
    running = []
    for case in cases:
        flags = [flag.replace("{base}", str(base)) for flag in BAD_INPUT[case][0]]
        command = [sys.executable, "-m", "spooler", "--name", "alqor", *flags]
        running.append(
            subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )

    answers = [(proc.wait(timeout=30), *proc.communicate()) for proc in running]

    assert answers == [(1, "", BAD_INPUT[case][1] + "\n") for case in cases]
    assert not base.exists()


# ---- manage.py run_spooler ------------------------------------------------------------------


@pytest.fixture
def migrated(tmp_path: Path, base: Path) -> dict[str, str]:
    """A database of its own (the test's is in memory) holding provider alqor on `base`."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "QLUED_DATA_DIR": str(tmp_path / "data"),
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "qlued.settings",
    }
    setup = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('migrate', verbosity=0); "
        "call_command('create_storage_provider', name='alqor', type='local', owner='lab', "
        f"login={json.dumps(json.dumps({'base_path': str(base)}))})"
    )
    subprocess.run(
        [sys.executable, "-c", setup], cwd=ROOT, env={**os.environ, **env}, check=True, timeout=60
    )
    return env


def test_run_spooler_serves_the_provider_registered_in_the_database(
    migrated, tmp_path, base, queue
):
    command = [sys.executable, "manage.py", "run_spooler", "alqor", "--backends", "singlequdit"]
    spooler = SpoolerProcess(command, tmp_path / "run_spooler.log", migrated)
    try:
        spooler.wait_serving()
        job_id = submit(queue, "singlequdit", spin_job(atoms=9, shots=2))
        wait_until(lambda: status_of(queue, "singlequdit", job_id) in FINAL, 15, "the job")
    finally:
        exit_status = spooler.terminate()

    assert exit_status == 0
    assert ids_in(base, "backends/configs") == ["singlequdit"]
    assert status_of(queue, "singlequdit", job_id) == "DONE"
    result = queue.get_result("singlequdit", job_id)
    assert result["results"][0]["data"]["counts"] == {"9": 2}
    assert spooler.job_lines() == [(job_id, "singlequdit", "DONE")]


def test_run_spooler_refuses_a_provider_that_is_not_registered(db):
    with pytest.raises(CommandError, match=r"^No storage provider named 'nowhere'\.$"):
        call_command("run_spooler", "nowhere")


def test_run_spooler_refuses_unknown_backends_before_touching_storage(local_provider, storage_path):
    with pytest.raises(CommandError, match=r"^Unknown backends \['qutrit'\]"):
        call_command("run_spooler", "alqor", backends="qutrit")

    assert not storage_path.exists()


# ---- several spoolers, and spoolers that die --------------------------------------------------


def test_several_spoolers_on_one_queue_run_every_job_exactly_once(start, base, queue):
    spoolers = [start() for _ in range(3)]
    for spooler in spoolers:
        spooler.wait_serving()
    jobs = {
        display: [submit(queue, display, job) for _ in range(50)]
        for display, job in (
            ("singlequdit", spin_job()),
            ("multiqudit", {"e": spin_job()["experiment_0"] | {"num_wires": 4}}),
            ("fermions", {"e": {"instructions": [], "num_wires": 8, "shots": 1}}),
        )
    }

    wait_until(
        lambda: all(
            len(ids_in(base, f"results/{display}")) == len(ids) for display, ids in jobs.items()
        ),
        60,
        "all 150 results",
    )

    assert [spooler.terminate() for spooler in spoolers] == [0, 0, 0]
    runs = Counter(line for spooler in spoolers for line in spooler.job_lines())
    expected = {(job_id, display, "DONE"): 1 for display, ids in jobs.items() for job_id in ids}
    assert runs == expected  # each job ran once, by one spooler, and nothing else ran
    assert sum(1 for spooler in spoolers if spooler.job_lines()) >= 2  # they did share
    for display, ids in jobs.items():
        assert ids_in(base, f"jobs/finished/{display}") == sorted(ids)
        assert ids_in(base, f"results/{display}") == sorted(ids)
        assert {status_of(queue, display, job_id) for job_id in ids} == {"DONE"}
        assert ids_in(base, f"jobs/queued/{display}") == []
    for folder in ("jobs/running", "jobs/deleted", "jobs/leases"):
        assert ids_in(base, folder) == []


def test_a_job_of_a_sigkilled_spooler_is_done_by_another_once_its_lease_runs_out(
    start, base, queue
):
    job_id = submit(queue, "multiqudit", slow_job(8))
    killed = start("--backends", "multiqudit", "--lease-seconds", "2")  # the lease that runs out
    wait_until(lambda: job_id in ids_in(base, "jobs/running"), 15, "the job to be claimed")
    killed.proc.kill()
    killed.proc.wait(timeout=10)
    assert ids_in(base, "jobs/running") == [job_id]
    assert status_of(queue, "multiqudit", job_id) == "INITIALIZING"

    survivor = start("--backends", "multiqudit", "--lease-seconds", "2")
    wait_until(lambda: status_of(queue, "multiqudit", job_id) in FINAL, 30, "the job to end")

    assert survivor.terminate() == 0
    assert killed.job_lines() == []
    assert survivor.job_lines() == [(job_id, "multiqudit", "DONE")]
    assert "lease of job " + job_id + " ran out: back in the queue" in survivor.log()
    assert status_of(queue, "multiqudit", job_id) == "DONE"
    assert ids_in(base, "jobs/finished/multiqudit") == [job_id]
    assert ids_in(base, "jobs/running") == ids_in(base, "jobs/leases") == []


# ---- display names of the operator's choosing (--backends lab=simulator) --------------------


def options(backends: str) -> Namespace:
    return Namespace(backends=backends, lease_seconds=600.0, private_jwk=None)


def lab_config(source: str = "singlequdit", /, **changes: object) -> dict:
    """A config a lab stored under `labqudit`, copied from the `source` simulator's own."""
    return {**BACKENDS[source].config(), "display_name": "labqudit", **changes}


def run_one(spooler: Spooler, queue: LocalProvider, display: str, job: dict) -> dict:
    """Queue `job` on `display`, let the spooler take one step, and return the job's status."""
    job_id = submit(queue, display, job)
    assert spooler.step()
    return queue.get_status(display, job_id)


def test_a_simulator_is_served_under_a_display_name_and_its_config_written(queue):
    spooler, _ = build_spooler(queue, options("labqudit=singlequdit,fermions"))
    spooler.announce()

    assert sorted(queue.list_backends()) == ["fermions", "labqudit"]
    config = queue.get_config("labqudit")
    stamped = {"last_queue_check": config["last_queue_check"], "pending_jobs": 0}
    assert config == {**lab_config(), "sign": False, "kid": None, **stamped}
    job_id = submit(queue, "labqudit", spin_job(atoms=4, shots=2))
    assert spooler.step()
    assert queue.get_status("labqudit", job_id)["status"] == "DONE"
    result = queue.get_result("labqudit", job_id)
    assert (result["display_name"], result["backend_name"]) == (
        "labqudit",
        "alqor_labqudit_simulator",
    )
    assert result["results"][0]["data"]["counts"] == {"4": 2}
    assert BACKENDS["singlequdit"].display_name == "singlequdit"  # the simulator is untouched


def test_a_stored_config_is_served_as_stored_and_its_limits_hold(queue):
    stored = lab_config(description="Our copy of singlequdit.", version="2.0", max_shots=100)
    queue.upload_config("labqudit", stored)
    spooler, _ = build_spooler(queue, options("labqudit=singlequdit"))
    spooler.announce()

    config = queue.get_config("labqudit")
    assert {k: v for k, v in config.items() if k not in SPOOLER_OWNED} == stored
    assert config["last_queue_check"] is not None
    refused = run_one(spooler, queue, "labqudit", spin_job(shots=101))
    assert (refused["status"], refused["detail"]) == (
        "ERROR",
        "experiment_0: shots = 101 is above the limit 100",
    )
    assert run_one(spooler, queue, "labqudit", spin_job(shots=100))["status"] == "DONE"


def test_a_stored_config_with_fewer_gates_and_wires_refuses_the_others(queue):
    pairs = BACKENDS["multiqudit"].config()
    gates = [
        {**gate, "coupling_map": [[0], [1]] if gate["name"] == "rlx" else [[0, 1]]}
        for gate in pairs["gates"]
        if gate["name"] in ("rlx", "rlxly")
    ]
    queue.upload_config(
        "labpair",
        {
            **pairs,
            "display_name": "labpair",
            "num_wires": 2,
            "gates": gates,
            "supported_instructions": ["rlx", "rlxly", "load", "measure", "barrier"],
        },
    )
    spooler, _ = build_spooler(queue, options("labpair=multiqudit"))

    def job(*instructions: list) -> dict:
        load = [["load", [0], [1]], ["load", [1], [1]]]
        return {"e": {"instructions": [*load, *instructions], "num_wires": 2, "shots": 1}}

    assert run_one(spooler, queue, "labpair", job(["rlxly", [0, 1], [1.0]]))["status"] == "DONE"
    assert run_one(spooler, queue, "labpair", job(["rlzlz", [0, 1], [1.0]]))["detail"] == (
        "e, instruction 2 (rlzlz): unknown instruction; this backend supports "
        "rlx, rlxly, load, measure, barrier"
    )
    wide = {"e": {"instructions": [["load", [2], [1]]], "num_wires": 3, "shots": 1}}
    assert run_one(spooler, queue, "labpair", wide)["detail"] == (
        "e: num_wires = 3 is above the limit 2"
    )


CANNOT = "error: The stored config of labqudit cannot be served by the singlequdit simulator: "
UNSERVABLE = {
    "too-many-wires": (lab_config(num_wires=2), CANNOT + "num_wires = 2 is outside 1..1."),
    "more-shots": (lab_config(max_shots=20_000), CANNOT + "max_shots = 20000 is outside 1..10000."),
    "hardware": (lab_config(simulator=False), CANNOT + "it describes hardware (simulator: false)."),
    "other-atoms": (
        lab_config(cold_atom_type="fermion"),
        CANNOT + "cold_atom_type is 'fermion', the simulator's is 'spin'.",
    ),
    "unknown-instruction": (
        lab_config(supported_instructions=["rlx", "squeeze", "load", "measure"]),
        CANNOT + "the simulator has no instruction squeeze.",
    ),
    "unknown-gate": (
        lab_config(
            gates=[
                {
                    "name": "squeeze",
                    "parameters": ["chi"],
                    "qasm_def": "{}",
                    "coupling_map": [[0]],
                    "description": "",
                }
            ]
        ),
        CANNOT + "the simulator has no gate squeeze.",
    ),
    "coupling-map": (
        lab_config(
            gates=[{**BACKENDS["singlequdit"].config()["gates"][0], "coupling_map": [[0, 1]]}]
        ),
        CANNOT + "gate rlx cannot act on wires [0, 1].",
    ),
    "not-a-config": (
        {k: v for k, v in lab_config().items() if k != "max_shots"},
        "error: The stored config of labqudit is not a valid backend config: "
        "max_shots: Field required.",
    ),
    "other-display-name": (
        lab_config(display_name="other"),
        "error: The stored config of labqudit has display_name 'other'.",
    ),
}


@pytest.mark.parametrize("case", list(UNSERVABLE))
def test_a_stored_config_the_simulator_cannot_honour_is_refused_in_one_line(
    base, queue, capsys, case
):
    stored, line = UNSERVABLE[case]
    queue.upload_config("labqudit", stored)
    before = (base / "backends/configs/labqudit.json").read_text()
    login = json.dumps({"base_path": str(base)})

    exit_status = run_main(
        [
            "--name",
            "alqor",
            "--type",
            "local",
            "--login",
            login,
            "--backends",
            "labqudit=singlequdit",
        ]
    )

    assert (exit_status, capsys.readouterr().err) == (1, line + "\n")
    assert (base / "backends/configs/labqudit.json").read_text() == before  # left as it was
    assert ids_in(base, "backends/configs") == ["labqudit"]


BAD_MAPPINGS = {
    "upper-case": (
        "Lab=singlequdit",
        "Display name 'Lab' must be 1 to 100 lowercase letters and digits.",
    ),
    "underscore": (
        "lab_1=fermions",
        "Display name 'lab_1' must be 1 to 100 lowercase letters and digits.",
    ),
    "empty": ("=fermions", "Display name '' must be 1 to 100 lowercase letters and digits."),
    "too-long": (
        "a" * 101 + "=fermions",
        f"Display name {'a' * 101!r} must be 1 to 100 lowercase letters and digits.",
    ),
    "twice": ("lab=fermions,lab=singlequdit", "Display name 'lab' is served twice."),
    "twice-plain": ("fermions,fermions=fermions", "Display name 'fermions' is served twice."),
    "unknown-simulator": (
        "lab=bosons",
        "Unknown backends ['bosons']; choose from singlequdit, multiqudit, fermions.",
    ),
    "nothing": (" , ", "Unknown backends []; choose from singlequdit, multiqudit, fermions."),
}


@pytest.mark.parametrize("case", list(BAD_MAPPINGS))
def test_a_bad_mapping_is_one_line_and_touches_nothing(base, capsys, case):
    backends, line = BAD_MAPPINGS[case]
    login = json.dumps({"base_path": str(base)})

    exit_status = run_main(
        ["--name", "alqor", "--type", "local", "--login", login, "--backends", backends]
    )

    assert (exit_status, capsys.readouterr().err) == (1, f"error: {line}\n")
    assert not base.exists()


def test_python_m_spooler_serves_a_mapping_as_a_real_process(start, queue):
    spooler = start("--backends", "labqudit=singlequdit,fermions")
    spooler.wait_serving()
    job_id = submit(queue, "labqudit", spin_job(atoms=6, shots=2))

    wait_until(lambda: status_of(queue, "labqudit", job_id) in FINAL, 15, "the job")

    assert spooler.terminate() == 0
    assert (
        "serving alqor_labqudit_simulator, alqor_fermions_simulator "
        "on local storage alqor (lease 600 s)"
    ) in spooler.log()
    assert spooler.job_lines() == [(job_id, "labqudit", "DONE")]


def test_run_spooler_refuses_a_mapping_the_stored_config_cannot_take(local_provider, storage_path):
    LocalProvider("alqor", storage_path).upload_config("labqudit", lab_config(num_wires=2))

    with pytest.raises(CommandError) as caught:
        call_command("run_spooler", "alqor", backends="labqudit=singlequdit")

    assert str(caught.value) == CANNOT.removeprefix("error: ") + "num_wires = 2 is outside 1..1."


def test_readmes_example_config_is_served_by_singlequdit_with_its_shot_limit(queue):
    example = json.loads((ROOT / "examples/labqudit.json").read_text())
    queue.upload_config("labqudit", example)
    spooler, _ = build_spooler(queue, options("labqudit=singlequdit,fermions"))
    spooler.announce()

    assert queue.get_config("labqudit")["description"] == example["description"]
    assert run_one(spooler, queue, "labqudit", spin_job(shots=1001))["detail"] == (
        "experiment_0: shots = 1001 is above the limit 1000"
    )
