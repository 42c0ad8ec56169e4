"""Fixtures of the sqooler interoperability suites: sqooler's venv and a key it made."""

from __future__ import annotations

from typing import Any

import pytest

from tests.interop import SqoolerSide
from tests.toolenvs import SQOOLER, ensure_venv


@pytest.fixture(scope="session")
def sqooler() -> SqoolerSide:
    return SqoolerSide(ensure_venv("sqooler", SQOOLER))


@pytest.fixture(scope="session")
def sqooler_key(sqooler: SqoolerSide) -> dict[str, Any]:
    """A key pair from sqooler's own generator: `private`, `public` (JWKs) and `config_str`."""
    from tests.interop.tinyspin import KID

    return dict(sqooler("keypair", kid=KID))
