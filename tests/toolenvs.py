"""Virtual environments for the clients and spoolers we must stay compatible with.

Their pins clash with the project's own (old numpy, old pydantic), so each lives in
a folder of its own under `.cache/venvs/`, built on first use and reused after.
A missing environment is built, never a reason to skip a test.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".cache" / "venvs"

SQOOLER = ("sqooler==0.9.0", "python-decouple==3.8")
QISKIT_COLD_ATOM = (
    "qiskit-cold-atom==0.2.1",
    "qiskit==0.46.3",
    "qiskit-terra==0.46.3",
    "qiskit-nature==0.6.2",
    "qiskit-aer==0.13.3",
    "numpy==1.26.4",
    "scipy==1.13.1",
    "requests==2.34.2",
)


def ensure_venv(name: str, requirements: tuple[str, ...]) -> Path:
    """Return the python of venv `name`, building it when absent or when its pins changed."""
    home = VENVS / name
    python = home / "bin" / "python"
    stamp = home / ".requirements"
    wanted = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    VENVS.mkdir(parents=True, exist_ok=True)
    with (VENVS / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, *requirements], check=True)
        stamp.write_text(wanted)
    return python
