"""Register a storage provider from the command line, validated exactly like the admin."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from backends.management.base import OperatorCommand
from backends.models import StorageType
from backends.services import create_storage_provider, get_or_create_user


def validation_text(exc: ValidationError) -> str:
    """One line out of a Django ValidationError."""
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


class Command(OperatorCommand):
    help = "Create a storage provider (the owner user is created when missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="lowercase letters and digits")
        parser.add_argument("--type", required=True, choices=StorageType.values, dest="type")
        parser.add_argument("--login", required=True, help="login as a JSON object")
        parser.add_argument("--owner", required=True, help="username of the owner")
        parser.add_argument("--description", default="")
        parser.add_argument("--inactive", action="store_true", help="create it switched off")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            login = json.loads(options["login"])
        except json.JSONDecodeError:
            raise CommandError("--login is not valid JSON.") from None
        try:
            with transaction.atomic():  # a refused provider leaves no new owner behind
                row = create_storage_provider(
                    name=options["name"],
                    storage_type=options["type"],
                    login=login,
                    owner=get_or_create_user(options["owner"]),
                    description=options["description"],
                    is_active=not options["inactive"],
                )
        except ValidationError as exc:
            raise CommandError(validation_text(exc)) from None
        self.stdout.write(f"Created storage provider {row.name} ({row.storage_type}).")
