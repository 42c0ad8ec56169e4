"""Command line of the spooler, shared by `python -m spooler` and `manage.py run_spooler`."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from pathlib import Path
from typing import Any

from storage_providers import StorageProvider
from storage_providers.names import KEY_ID_RE
from storage_providers.schemas import Document

from .simulators import BACKENDS
from .worker import Spooler, SpoolerOptions

log = logging.getLogger("spooler")


class UsageError(ValueError):
    """Bad command-line input: one line for the operator, exit status 1."""


def add_spooler_options(parser: argparse.ArgumentParser) -> None:
    """The flags both spooler commands take (SPEC §9)."""
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated backends to serve (default: {','.join(BACKENDS)})",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=600.0,
        help="a job whose spooler stops renewing goes back to the queue after this long",
    )
    parser.add_argument("--private-jwk", type=Path, help="Ed25519 private JWK: sign what we write")


def build_spooler(provider: StorageProvider, options: Any) -> tuple[Spooler, Document | None]:
    """A spooler for the parsed options, and the public key to publish (when signing)."""
    wanted = [name.strip() for name in options.backends.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in BACKENDS]
    if unknown or not wanted:
        raise UsageError(
            f"Unknown backends {unknown or wanted}; choose from {', '.join(BACKENDS)}."
        )
    if not 0 < options.lease_seconds < math.inf:  # nan and inf break the reaper's clock
        raise UsageError("--lease-seconds must be a positive number of seconds.")
    signer = kid = public = None
    if options.private_jwk is not None:
        from .signing import InvalidKey, load_private_jwk, sign

        try:
            key = load_private_jwk(options.private_jwk)
        except (OSError, ValueError, InvalidKey) as exc:
            raise UsageError(f"Cannot use {options.private_jwk} as a private key: {exc}") from None
        if not KEY_ID_RE.fullmatch(key.kid):
            raise UsageError("The key id may hold only letters, digits, '_' and '-' (1-128).")
        kid, public = key.kid, key.public_jwk()

        def signer(doc: Document) -> Document:
            return sign(doc, key)

    spooler = Spooler(
        provider,
        [BACKENDS[name] for name in wanted],
        options=SpoolerOptions(lease_seconds=options.lease_seconds),
        signer=signer,
        kid=kid,
    )
    return spooler, public


def serve(provider: StorageProvider, options: Any) -> None:
    """Announce the backends, then run until SIGTERM or Ctrl-C."""
    spooler, public = build_spooler(provider, options)
    # Before announcing: whoever sees the "serving" line may already send SIGTERM.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: spooler.stop())
    try:
        spooler.announce(public)
        spooler.run()
    finally:
        provider.close()


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
