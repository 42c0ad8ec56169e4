"""Interoperability with sqooler 0.9.0, run in a venv of its own through `sqooler_side.py`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.dropbox_double import DropboxDouble
    from tests.mongo import MongoServer

SIDE_SCRIPT = Path(__file__).resolve().parent / "sqooler_side.py"


class SqoolerSide:
    """Runs commands of `sqooler_side.py` with the python of the sqooler venv."""

    def __init__(self, python: Path) -> None:
        self.python = python

    def __call__(self, command: str, **request: Any) -> Any:
        """Run `command` with `request` as its JSON input and return its JSON answer."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
        done = subprocess.run(
            [str(self.python), str(SIDE_SCRIPT), command],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"sqooler_side {command} failed:\n{done.stderr}")
        return json.loads(done.stdout)


def mongodb_side(server: MongoServer, provider: str = "alqor") -> dict[str, Any]:
    """The storage part of a sqooler_side request for the Mongo-wire test server.

    sqooler gets the lab's credentials; only the address it connects to is the server's.
    """
    login = server.login()
    target = {
        "uri": server.uri,
        "username": login["mongodb_username"],
        "password": login["mongodb_password"],
    }
    return {"mongodb": target, "provider": provider}


def dropbox_side(box: DropboxDouble, provider: str = "alqor") -> dict[str, Any]:
    """The storage part of a sqooler_side request for the Dropbox double.

    sqooler gets the app's login as a lab's deployment holds it; its SDK finds the
    double through the environment this process set before anything imported `dropbox`
    (tests/conftest.py), which the sqooler side inherits.
    """
    return {"dropbox": box.login(), "provider": provider}
