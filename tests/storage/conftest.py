"""The `provider` fixture: every contract test runs once per storage medium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage_providers import LocalProvider, StorageProvider, build_provider
from tests.conftest import FERMIONS_CONFIG, MEDIA, TEST_OPTIONS, mongodb_provider


@pytest.fixture(params=MEDIA)
def medium(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_provider(medium: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Builds provider objects on one shared, empty storage of the medium under test.

    Several objects over one storage stand for several spoolers (or API workers).
    """
    made: list[StorageProvider] = []
    if medium == "mongodb":
        server = request.getfixturevalue("mongo")
    if medium == "dropbox":
        box = request.getfixturevalue("box")

    def make() -> StorageProvider:
        provider: StorageProvider
        if medium == "local":
            provider = LocalProvider("alqor", tmp_path / "store")
        elif medium == "mongodb":
            provider = mongodb_provider(server)
        else:
            provider = build_provider("dropbox", "alqor", box.login(), TEST_OPTIONS)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider) -> Iterator[StorageProvider]:  # type: ignore[no-untyped-def]
    """A provider on empty storage with the fermions backend configured."""
    provider = make_provider()
    provider.upload_config("fermions", json.loads(json.dumps(FERMIONS_CONFIG)))
    yield provider
