"""Write a backend config file into a storage provider, after checking it against the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from pydantic import ValidationError

from backends.management.base import OperatorCommand
from backends.models import StorageProviderDb
from backends.services import upload_backend_config
from storage_providers import StorageError, TypeUnavailable


class Command(OperatorCommand):
    help = "Validate FILE.json as a backend config and upload it into provider N."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", required=True, help="name of the storage provider")
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        row = StorageProviderDb.objects.filter(name=options["provider"]).first()
        if row is None:
            raise CommandError(f"No storage provider named {options['provider']!r}.")
        try:
            config = json.loads(options["file"].read_text())
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CommandError(f"{options['file']} is not valid JSON.") from None
        try:
            parsed = upload_backend_config(provider_row=row, config=config)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "config"
            raise CommandError(f"Invalid backend config: {where}: {first['msg']}.") from None
        except TypeUnavailable:
            raise CommandError(f"Storage type {row.storage_type} is not available.") from None
        except StorageError as exc:
            raise CommandError(f"Could not write to {row.name}: {exc}") from None
        self.stdout.write(f"Uploaded config of {parsed.display_name} to {row.name}.")
