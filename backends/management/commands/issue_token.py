"""Issue an API token; the plaintext is printed once, alone on the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from backends.auth import issue_token
from backends.management.base import OperatorCommand
from backends.services import get_or_create_user


class Command(OperatorCommand):
    help = "Issue a new API token for USERNAME (created when missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username or len(username) > 150:
            raise CommandError("USERNAME must be 1 to 150 characters.")
        _, plaintext = issue_token(get_or_create_user(username))
        self.stdout.write(f"Token for {username} (shown once, store it safely):")
        self.stdout.write(plaintext)
