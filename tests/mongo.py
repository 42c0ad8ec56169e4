"""A real MongoDB-wire server for the tests (secantusdb), with a SCRAM user and auth on.

The server is started once per test session; each test that uses it starts from
empty layout databases. It can be stopped and started again on the same port, so
that tests see an outage and the recovery that follows without restarting anything.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any

import pymongo
from secantus import SecantusDBServer

USERNAME = "lab"
PASSWORD = "s3cret:p@ss/word"  # characters that must be percent-encoded in a URI
LAYOUT_DATABASES = ("backends", "jobs", "status", "results")


class MongoServer:
    """One secantusdb server on a fixed loopback port, with auth required."""

    def __init__(self, storage_path: Path) -> None:
        self.storage_path = storage_path
        self.port = _free_port()
        self._server: SecantusDBServer | None = None
        self._create_user()
        self.start()

    @property
    def uri(self) -> str:
        """The URI without credentials (they are passed beside it, SPEC §5)."""
        return f"mongodb://127.0.0.1:{self.port}/"

    def login(self) -> dict[str, str]:
        """A provider login that reaches this server."""
        return {
            "mongodb_username": USERNAME,
            "mongodb_password": PASSWORD,
            "mongodb_database_url": self.uri,
        }

    def client(self, **options: Any) -> pymongo.MongoClient:
        """A client of our own, to look at the layout as a Mongo spooler sees it."""
        options = {"tz_aware": True, "serverSelectionTimeoutMS": 5000, **options}
        return pymongo.MongoClient(self.uri, username=USERNAME, password=PASSWORD, **options)

    def _create_user(self) -> None:
        """SCRAM users must exist before the server is started with auth required."""
        with SecantusDBServer(port=0, storage_path=str(self.storage_path)) as server:
            admin = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
            admin.admin.command("createUser", USERNAME, pwd=PASSWORD, roles=["root"])
            admin.close()

    def start(self) -> None:
        if self._server is not None:
            return
        for _ in range(100):  # a stopped server's socket lingers until its accept wakes up
            server = SecantusDBServer(
                port=self.port, storage_path=str(self.storage_path), require_auth=True
            )
            try:
                server.start()
            except OSError:
                server.storage.close()  # the data folder opens again only once closed
                _wake(self.port)
                time.sleep(0.1)
                continue
            self._server = server
            return
        raise RuntimeError(f"could not start the Mongo-wire server on port {self.port}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Empty the databases of the layout (SPEC §6) for the next test."""
        with self.client() as client:
            for name in LAYOUT_DATABASES:
                client.drop_database(name)


def _wake(port: int) -> None:
    """Connect once: a stopped server's accept() holds its port until a client comes by."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
