"""README's "Running it for a lab", line by line, in a bare shell after `make setup`.

The commands are read out of README.md itself, so the test fails when README and the
commands drift apart. They run through bash with only PATH and HOME set, plus the two
settings that keep the run out of the checkout: its own `.env` (written by the
Makefile's target, as `make setup` writes it) and its own data folder. The storage
folder of the README (`/srv/qlued`) becomes a temporary one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lab_blocks() -> list[list[str]]:
    """The shell blocks of the lab section, each as its commands (continuations joined)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running it for a lab") :]
    section = section[: section.index("\n## ", 1)]
    section = section[: section.index("### Switching from the replaced service")]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [block.replace("\\\n", " ").strip().splitlines() for block in blocks]


def test_readmes_lab_commands_work_as_printed(tmp_path):
    subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(tmp_path),
            "-f",
            str(ROOT / "Makefile"),
            ".env",
            f"PYTHON={ROOT / '.venv/bin/python'}",
        ],  # fmt: skip
        check=True,
        timeout=60,
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "QLUED_ENV_FILE": str(tmp_path / ".env"),
        "QLUED_DATA_DIR": str(tmp_path / "data"),
    }
    storage = tmp_path / "qlued"
    commands, standalone = lab_blocks()
    assert [line.split()[2] for line in commands] == [
        "migrate",
        "create_storage_provider",
        "issue_token",
        "upload_backend_config",
        "run_spooler",
    ]

    def shell(line: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", line.replace("/srv/qlued", str(storage))],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    for line in commands[:-1]:
        done = shell(line)
        assert (done.returncode, done.stderr) == (0, ""), line
    assert done.stdout == "Uploaded config of labqudit to mylab.\n"

    for line in (commands[-1], *standalone):  # they serve until Ctrl-C
        log = tmp_path / "spooler.log"
        with log.open("wb") as out:
            spooler = subprocess.Popen(
                ["bash", "-c", "exec " + line.replace("/srv/qlued", str(storage))],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while " serving " not in log.read_text():
            assert spooler.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        spooler.send_signal(signal.SIGINT)
        assert spooler.wait(timeout=30) == 0, log.read_text()
        assert (
            "serving mylab_labqudit_simulator, mylab_fermions_simulator "
            "on local storage mylab (lease 600 s)"
        ) in log.read_text()
        assert "Traceback" not in log.read_text()
    assert sorted(p.name for p in (storage / "backends/configs").iterdir()) == [
        "fermions.json",
        "labqudit.json",
    ]
