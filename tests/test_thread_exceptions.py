"""A test whose helper thread raises fails (pyproject's filterwarnings), not only warns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HELPER_RAISES = """
import threading


def test_a_reader_thread_fails():
    def reader():
        raise RuntimeError("the reader thread broke")

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join()
"""


def test_a_test_whose_helper_thread_raises_fails(tmp_path):
    module = tmp_path / "test_helper.py"
    module.write_text(HELPER_RAISES)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(module),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stdout
    assert "1 failed" in done.stdout
    assert "the reader thread broke" in done.stdout
