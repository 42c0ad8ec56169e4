"""The published qiskit cold-atom client runs circuits against the service, unchanged (SPEC §8).

The real service (pytest-django's live server) and the real spooler (`python -m spooler`,
a subprocess) share a local storage folder; `qiskit_script.py` plays the user in the
venv of `qiskit-cold-atom==0.2.1`, whose pins clash with ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_django.live_server_helper import LiveServer

from tests.toolenvs import QISKIT_COLD_ATOM, ROOT, ensure_venv

pytestmark = pytest.mark.client

SCRIPT = Path(__file__).resolve().with_name("qiskit_script.py")
MOUNT = "/api/qiskit-cold-atom"
FERMIONS = "alqor_fermions_simulator"
SINGLEQUDIT = "alqor_singlequdit_simulator"
MULTIQUDIT = "alqor_multiqudit_simulator"
SCRIPT_SECONDS = 600
SPOOLER_START_SECONDS = 60

Spooler = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture(scope="session")
def qiskit_python() -> Path:
    return ensure_venv("qiskit", QISKIT_COLD_ATOM)


@pytest.fixture
def spooler(local_provider: Any, live_server: LiveServer, tmp_path: Path) -> Iterator[Spooler]:
    """Start `python -m spooler` on the provider's folder once its configs are served."""
    started: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "spooler.log"

    def start(*backends: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "spooler", "--name", local_provider.name, "--type"]
        command += ["local", "--login", json.dumps(local_provider.login)]
        command += ["--backends", ",".join(name.split("_")[1] for name in backends)]
        with log.open("ab") as out:
            process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        started.append(process)
        _wait_for_configs(process, live_server.url, backends, log)
        return process

    yield start
    for process in started:
        _stop(process)


def _wait_for_configs(
    process: subprocess.Popen[bytes], base: str, backends: tuple[str, ...], log: Path
) -> None:
    """The spooler announces its backends on start; wait until the mount serves them."""
    deadline = time.monotonic() + SPOOLER_START_SECONDS
    missing = list(backends)
    while missing:
        if process.poll() is not None:
            pytest.fail(f"the spooler exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"no config for {missing} after {SPOOLER_START_SECONDS}s:\n{log.read_text()}"
            )
        answer = requests.get(f"{base}{MOUNT}/{missing[0]}/get_config", timeout=10)
        if answer.status_code == 200:
            missing.pop(0)
        else:
            time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as an operator would; kill only what ignores it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_script(
    python: Path, mode: str, base: str, token: str, username: str, home: Path, *flags: str
) -> subprocess.CompletedProcess[str]:
    """Run `qiskit_script.py` as a user would, with a throwaway HOME and our venv out of sight."""
    home.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(HOME=str(home), QLUED_URL=base, QLUED_TOKEN=token, QLUED_USERNAME=username)
    done = subprocess.run(
        [str(python), str(SCRIPT), mode, *flags],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_SECONDS,
        check=False,
    )
    print(done.stdout)  # the lead quotes it; pytest shows it with -s or on failure
    return done


def explain(done: subprocess.CompletedProcess[str], log: Path) -> str:
    spooler_log = log.read_text() if log.exists() else "(no spooler log)"
    return (
        f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr (tail)\n"
        f"{done.stderr[-4000:]}\n--- spooler log (tail)\n{spooler_log[-4000:]}"
    )


def test_circuits_run_with_the_expected_counts_and_refusals_stop_polling(
    qiskit_python: Path,
    spooler: Spooler,
    live_server: LiveServer,
    token: str,
    user: Any,
    tmp_path: Path,
) -> None:
    spooler(FERMIONS, SINGLEQUDIT)
    done = run_script(
        qiskit_python, "run", live_server.url, token, user.username, tmp_path / "home"
    )
    assert done.returncode == 0, explain(done, tmp_path / "spooler.log")
    assert "FAIL" not in done.stdout
    assert "{'0 0 1 1 0 0 0 0': 50}" in done.stdout
    assert "[{'7': 50}, {'0': 50}]" in done.stdout
    assert done.stdout.count("status(): ERROR") == 2
    assert done.stdout.rstrip().endswith("ALL CHECKS PASSED")
    assert token not in done.stdout + done.stderr


def test_every_builtin_config_passes_qiskit_and_the_clients_checks(
    qiskit_python: Path,
    spooler: Spooler,
    live_server: LiveServer,
    token: str,
    user: Any,
    tmp_path: Path,
) -> None:
    backends = (FERMIONS, SINGLEQUDIT, MULTIQUDIT)
    spooler(*backends)
    flags = ("--backends", ",".join(backends))
    home = tmp_path / "home"
    done = run_script(qiskit_python, "configs", live_server.url, token, user.username, home, *flags)
    assert done.returncode == 0, explain(done, tmp_path / "spooler.log")
    assert "FAIL" not in done.stdout
    for name in backends:
        assert f"ok   {name}: BackendConfiguration.from_dict" in done.stdout
    assert done.stdout.rstrip().endswith("ALL CHECKS PASSED")
