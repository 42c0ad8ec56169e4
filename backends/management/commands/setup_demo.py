"""Make a fresh install usable at once: a local provider, the simulators' configs, a token.

The demo token is a convenience of `make run`: it is issued once, kept in a file of the
data folder that only its owner may read, and printed again at every start, so that a
saved client account survives restarts. No token is ever deleted here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError, CommandParser

from backends.auth import issue_token
from backends.cache import clear_all
from backends.management.base import OperatorCommand
from backends.models import StorageProviderDb, Token, token_digest
from backends.services import get_or_create_user
from spooler.simulators import BACKENDS
from storage_providers import LocalProvider

DEMO_USER = "demo"
TOKEN_FILE = "demo-token"


class Command(OperatorCommand):
    help = "Create the demo provider (local storage), its backend configs and the demo token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default=settings.DEFAULT_STORAGE)
        parser.add_argument("--base-path", type=Path, default=settings.DATA_DIR / "storage")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_or_create_user(DEMO_USER)
        row, created = StorageProviderDb.objects.get_or_create(
            name=options["name"],
            defaults={
                "storage_type": "local",
                "owner": user,
                "login": {"base_path": str(options["base_path"])},
                "description": "Demo provider: the built-in simulators on a local folder.",
            },
        )
        if row.storage_type == "local":
            provider = LocalProvider(row.name, row.login["base_path"])
            present = set(provider.list_backends())
            for display, backend in BACKENDS.items():
                if display not in present:
                    provider.upload_config(display, backend.config())
        path = settings.DATA_DIR / TOKEN_FILE
        try:
            plaintext, kept = demo_token(user, path)
        except OSError as exc:
            raise CommandError(f"Cannot keep the demo token in {path}: {exc.strerror}.") from None
        clear_all()
        state = "created" if created else "exists"
        self.stdout.write(
            f"Storage provider {row.name} ({row.storage_type}, {state}): {row.masked_login}"
        )
        origin = "Demo token" if kept else "New demo token, now"
        self.stdout.write(f"{origin} kept in {path} (readable by its owner only).")
        self.stdout.write(f"Demo token: {plaintext}")


def demo_token(user: AbstractBaseUser, path: Path) -> tuple[str, bool]:
    """The demo token stored in `path` while it still works, else a new one stored there.

    Returns the token and whether it was kept. A token revoked in the admin (inactive or
    deleted) is left as it is; the demo user then gets a new one.
    """
    if path.is_file():
        path.chmod(0o600)
        plaintext = path.read_text().strip()
        if Token.objects.filter(key=token_digest(plaintext), user=user, is_active=True).exists():
            return plaintext, True
    _, plaintext = issue_token(user)
    _write_private(path, plaintext + "\n")
    return plaintext, False


def _write_private(path: Path, text: str) -> None:
    """Write `text` atomically into a file readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    temporary.replace(path)
