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
from storage_providers.names import KEY_ID_RE, NAME_RE
from storage_providers.schemas import Document

from .simulators import BACKENDS, Backend
from .simulators.serving import Unservable, serve_as
from .worker import Spooler, SpoolerOptions

log = logging.getLogger("spooler")
MAX_DISPLAY = 100  # what the service's models hold (SPEC §4)


class UsageError(ValueError):
    """Bad command-line input: one line for the operator, exit status 1."""


def add_spooler_options(parser: argparse.ArgumentParser) -> None:
    """The flags both spooler commands take (SPEC §9)."""
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=(
            "comma-separated simulators to serve, each under its own name or as "
            f"DISPLAY=SIMULATOR (e.g. labqudit=singlequdit; default: {','.join(BACKENDS)})"
        ),
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=600.0,
        help="a job whose spooler stops renewing goes back to the queue after this long",
    )
    parser.add_argument("--private-jwk", type=Path, help="Ed25519 private JWK: sign what we write")


def parse_backends(text: str) -> list[tuple[str, Backend]]:
    """`--backends`: (display name, simulator) pairs from `fermions,lab=singlequdit`."""
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            display, mapped, simulator = item.partition("=")
            pairs.append((display.strip(), simulator.strip()) if mapped else (item, item))
    unknown = [simulator for _, simulator in pairs if simulator not in BACKENDS]
    if unknown or not pairs:
        raise UsageError(f"Unknown backends {unknown}; choose from {', '.join(BACKENDS)}.")
    seen: set[str] = set()
    for display, _ in pairs:
        if not NAME_RE.fullmatch(display) or len(display) > MAX_DISPLAY:
            raise UsageError(
                f"Display name {display!r} must be 1 to {MAX_DISPLAY} lowercase letters and digits."
            )
        if display in seen:
            raise UsageError(f"Display name {display!r} is served twice.")
        seen.add(display)
    return [(display, BACKENDS[simulator]) for display, simulator in pairs]


def served_backends(provider: StorageProvider, wanted: list[tuple[str, Backend]]) -> list[Backend]:
    """Each simulator under its display name, held to the config stored there if any."""
    present = set(provider.list_backends())
    try:
        return [
            serve_as(
                simulator, display, provider.get_config(display) if display in present else None
            )
            for display, simulator in wanted
        ]
    except Unservable as exc:
        raise UsageError(str(exc)) from None


def build_spooler(provider: StorageProvider, options: Any) -> tuple[Spooler, Document | None]:
    """A spooler for the parsed options, and the public key to publish (when signing)."""
    wanted = parse_backends(options.backends)
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
        served_backends(provider, wanted),
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
