"""Run the built-in spooler for a provider registered in the service's database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from backends.management.base import OperatorCommand
from backends.models import StorageProviderDb
from spooler.cli import UsageError, add_spooler_options, configure_logging, serve
from storage_providers import LoginError, StorageError, TypeUnavailable, build_provider


class Command(OperatorCommand):
    help = "Run the built-in simulators' spooler on storage provider PROVIDER."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", help="name of a registered storage provider")
        add_spooler_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        row = StorageProviderDb.objects.filter(name=options["provider"]).first()
        if row is None:
            raise CommandError(f"No storage provider named {options['provider']!r}.")
        configure_logging()
        try:
            provider = build_provider(row.storage_type, row.name, row.login)
            serve(provider, _Options(options))
        except TypeUnavailable:
            raise CommandError(f"Storage type {row.storage_type} is not available.") from None
        except (LoginError, UsageError, StorageError) as exc:
            raise CommandError(str(exc)) from None


class _Options:
    """Django's option dict seen with attribute access, as the spooler's CLI has it."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.backends = options["backends"]
        self.lease_seconds = options["lease_seconds"]
        self.private_jwk = options["private_jwk"]
