"""Write a backend config file into a storage provider, after checking it against the schema.

`last_queue_check` and `pending_jobs` belong to the spooler that serves the backend: it
stamps them each time it looks at its queue. A config copied from a served one carries
them, and would look operational with nothing behind it, so they are cleared unless
`--keep-spooler-fields` is given. `status_msg` is the operator's (neither this project's
spooler nor sqooler writes it) and is kept.
"""

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

SPOOLER_FIELDS = ("last_queue_check", "pending_jobs")


class Command(OperatorCommand):
    help = "Validate FILE.json as a backend config and upload it into provider N."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", required=True, help="name of the storage provider")
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--keep-spooler-fields",
            action="store_true",
            help=f"keep {' and '.join(SPOOLER_FIELDS)} as the file has them (default: cleared)",
        )

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
        if isinstance(config, dict) and not options["keep_spooler_fields"]:
            config = {key: value for key, value in config.items() if key not in SPOOLER_FIELDS}
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
