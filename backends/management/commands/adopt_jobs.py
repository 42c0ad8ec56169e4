"""Give jobs from before the switch to their owner: `adopt_jobs --provider N --user U`.

Jobs posted by the replaced service sit in storage but in no ledger, so nobody sees
them (SPEC §4). This records every such job of provider N (of backend D only, with
`--display D`) as user U's. Jobs already in the ledger, whoever's, are left alone.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from pydantic import ValidationError

from backends.management.base import OperatorCommand
from backends.models import StorageProviderDb
from backends.services import adopt_jobs
from storage_providers import InvalidName, NotFound, StorageError, TypeUnavailable


class Command(OperatorCommand):
    help = "Record the jobs in provider N that no ledger holds as user U's."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", required=True, help="name of the storage provider")
        parser.add_argument("--user", required=True, help="username of the jobs' owner")
        parser.add_argument("--display", help="only the jobs of this backend (display name)")

    def handle(self, *args: Any, **options: Any) -> None:
        row = StorageProviderDb.objects.filter(name=options["provider"]).first()
        if row is None:
            raise CommandError(f"No storage provider named {options['provider']!r}.")
        owner = get_user_model().objects.filter(username=options["user"]).first()
        if owner is None:
            raise CommandError(f"No user named {options['user']!r}.")
        display = options["display"]
        try:
            report = adopt_jobs(provider_row=row, owner=owner, display=display)
        except (NotFound, InvalidName, ValidationError):
            raise CommandError(f"No backend {display!r} on {row.name}.") from None
        except TypeUnavailable:
            raise CommandError(f"Storage type {row.storage_type} is not available.") from None
        except StorageError as exc:
            raise CommandError(f"Could not read {row.name}: {exc}") from None
        for name, (adopted, known) in report.items():
            self.stdout.write(f"{name}: adopted {adopted} jobs for {owner}, {known} already known.")
        total = sum(adopted for adopted, _ in report.values())
        self.stdout.write(f"Adopted {total} jobs of {row.name} for {owner}.")
