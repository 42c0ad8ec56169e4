"""Make a fresh install usable at once: a local provider, the simulators' configs, a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from backends.auth import issue_token
from backends.cache import clear_all
from backends.management.base import OperatorCommand
from backends.models import StorageProviderDb, Token
from backends.services import get_or_create_user
from spooler.simulators import BACKENDS
from storage_providers import LocalProvider

DEMO_USER = "demo"


class Command(OperatorCommand):
    help = "Create the demo provider (local storage), its backend configs and a fresh demo token."

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
        # Only digests are kept, so an old demo token cannot be shown again: issue a new one.
        Token.objects.filter(user=user).delete()
        _, plaintext = issue_token(user)
        clear_all()
        state = "created" if created else "exists"
        self.stdout.write(f"Storage provider {row.name} ({row.storage_type}, {state}): {row.login}")
        self.stdout.write(f"Demo token: {plaintext}")
