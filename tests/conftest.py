"""Fixtures shared by every suite: a user, a token, a local provider with backends."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

os.environ.setdefault("DEBUG", "true")

# The Dropbox SDK reads its hosts at import: point it at the double before anything can.
from tests.dropbox_double import ensure_environment  # noqa: E402

DROPBOX_ADDRESS = ensure_environment()

from storage_providers import StorageProvider  # noqa: E402
from storage_providers.dropbox import DropboxOptions  # noqa: E402
from storage_providers.registry import ProviderOptions  # noqa: E402

# Provider objects the tests build themselves read storage afresh every time.
TEST_OPTIONS = ProviderOptions(dropbox=DropboxOptions(config_cache_seconds=0, timeout=5))

if TYPE_CHECKING:
    from tests.dropbox_double import DropboxDouble
    from tests.mongo import MongoServer

FERMIONS_CONFIG = {
    "description": "Four tweezers of spinful fermions.",
    "version": "0.1",
    "display_name": "fermions",
    "cold_atom_type": "fermion",
    "gates": [
        {
            "name": "fhop",
            "parameters": ["j_i"],
            "qasm_def": "{}",
            "coupling_map": [[0, 1, 2, 3]],
            "description": "hopping",
        }
    ],
    "max_experiments": 50,
    "max_shots": 10000,
    "simulator": True,
    "supported_instructions": ["load", "fhop", "measure", "barrier"],
    "num_wires": 8,
    "wire_order": "interleaved",
    "num_species": 2,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "client: runs the real qiskit cold-atom client")
    config.addinivalue_line("markers", "interop: runs the real sqooler 0.9.0 spooler")
    config.addinivalue_line(
        "markers", "object_ids: the test writes job ids as ObjectIds (local and MongoDB only)"
    )


@pytest.fixture(autouse=True)
def _fresh_caches(settings: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with empty per-process caches and reads storage afresh."""
    from backends.cache import clear_all
    from backends.providers import forget_providers

    settings.CACHE_SECONDS = 0
    settings.DROPBOX_CACHE_SECONDS = 0
    settings.BASE_URL = ""
    settings.DEFAULT_STORAGE = "alqor"
    clear_all()
    forget_providers()
    yield
    clear_all()
    forget_providers()


@pytest.fixture
def user(db):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("alice", password=None)


@pytest.fixture
def token(user) -> str:  # type: ignore[no-untyped-def]
    from backends.auth import issue_token

    return issue_token(user)[1]


@pytest.fixture
def storage_path(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def medium() -> str:
    """The storage medium of `storage` and `local_provider`; API modules parametrize it."""
    return "local"


@pytest.fixture
def medium_login(medium: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict:
    """The login of the medium under test: a folder (`storage_path`), the Mongo-wire server
    or the Dropbox double."""
    if medium == "mongodb":
        return dict(request.getfixturevalue("mongo").login())
    if medium == "dropbox":
        return dict(request.getfixturevalue("box").login())
    return {"base_path": str(tmp_path / "storage")}


@pytest.fixture
def local_provider(user, medium: str, medium_login: dict):  # type: ignore[no-untyped-def]
    """Provider `alqor` registered in the database (a local folder unless `medium` says so)."""
    from backends.models import StorageProviderDb

    return StorageProviderDb.objects.create(
        name="alqor", storage_type=medium, owner=user, login=medium_login
    )


@pytest.fixture
def storage(local_provider, medium: str, medium_login: dict) -> Iterator[StorageProvider]:  # type: ignore[no-untyped-def]
    """The provider object over the same storage, with a fermions backend configured."""
    from storage_providers import build_provider

    provider = build_provider(medium, "alqor", medium_login, TEST_OPTIONS)
    provider.upload_config("fermions", json.loads(json.dumps(FERMIONS_CONFIG)))
    yield provider
    provider.close()


MEDIA = ["local", "mongodb", "dropbox"]


def every_medium(metafunc: pytest.Metafunc) -> None:
    """Run a module's tests on every medium (path-level tests: local only).

    A test that asks for `storage_path` looks at files, which only the local medium has.
    """
    if "medium" in metafunc.fixturenames:
        media = MEDIA
        if metafunc.definition.get_closest_marker("object_ids"):
            media = ["local", "mongodb"]
        if "storage_path" in metafunc.fixturenames:
            media = ["local"]
        metafunc.parametrize("medium", media)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """A real MongoDB-wire server (secantusdb) with a SCRAM user and auth required."""
    from tests.mongo import MongoServer

    server = MongoServer(tmp_path_factory.mktemp("mongo"))
    yield server
    server.stop()


@pytest.fixture
def mongo(mongo_server: MongoServer) -> Iterator[MongoServer]:
    """The Mongo-wire server, up, with empty layout databases."""
    mongo_server.start()
    mongo_server.reset()
    yield mongo_server
    mongo_server.start()  # a test that stopped it leaves it running for the next


def mongodb_provider(server: MongoServer, name: str = "alqor") -> StorageProvider:
    """A MongoDB provider object on the test server, built as the service builds one."""
    from storage_providers import build_provider

    return build_provider("mongodb", name, server.login(), TEST_OPTIONS)


@pytest.fixture(scope="session")
def dropbox_double() -> Iterator[DropboxDouble]:
    """The loopback HTTPS Dropbox double that the real SDK talks to (tests/dropbox_double.py)."""
    from tests.dropbox_double import DropboxDouble

    double = DropboxDouble(DROPBOX_ADDRESS)
    double.start()
    yield double
    double.stop()


@pytest.fixture
def box(dropbox_double: DropboxDouble) -> Iterator[DropboxDouble]:
    """The Dropbox double, up, with an empty app folder and fresh counters."""
    dropbox_double.start()
    dropbox_double.reset()
    yield dropbox_double
    dropbox_double.start()


@pytest.fixture
def dropbox_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build without the Dropbox provider: its type is known but has no factory.

    Every type is built today; this keeps the answer of a type that is not honest.
    """
    from dataclasses import replace

    from storage_providers import registry

    kinds = {**registry.KINDS, "dropbox": replace(registry.KINDS["dropbox"], factory=None)}
    monkeypatch.setattr(registry, "KINDS", kinds)


def spool_until_done(provider: StorageProvider, login: dict, job_id: str) -> tuple[int, str]:
    """Run `python -m spooler` on `provider`'s medium until `job_id` is DONE (or 20 s pass),
    then SIGTERM it; its exit status and its log."""
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "spooler", "--name", provider.name]
    command += ["--type", provider.storage_type, "--login", json.dumps(login)]
    spooler = subprocess.Popen(
        [*command, "--backends", "fermions"],
        cwd=Path(__file__).resolve().parent.parent,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if provider.get_status("fermions", job_id)["status"] == "DONE":
                break
            time.sleep(0.05)
    finally:
        spooler.terminate()
        _, log = spooler.communicate(timeout=30)
    return spooler.returncode, log
