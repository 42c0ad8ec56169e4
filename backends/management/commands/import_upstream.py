"""Bring users, tokens and storage providers over from the replaced qlued service's database.

The replaced service (Django app `backends`, user model `backends.User`) kept its
tokens in plain text in `backends_token.key`; here only their SHA-256 digests are
stored, so saved client accounts keep working and no token is ever shown. Rows
already here are left as they are, so a second run changes nothing.

The replaced service never looked at `Token.is_active` (whose default was false), so
a token it marked inactive still worked there: such tokens are imported active unless
`--keep-inactive` says to carry the flag over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dj_database_url
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backends.management.base import OperatorCommand
from backends.management.commands.create_storage_provider import validation_text
from backends.models import StorageProviderDb, Token, token_digest
from backends.services import create_storage_provider

USER_TABLES = ("backends_user", "auth_user")  # the custom user model, else Django's own
TOKENS = "backends_token"
ALIAS = "replaced_service"
PROVIDERS = "backends_storageproviderdb"
USER_COLUMNS = {
    "id": None,
    "username": None,
    "password": "",
    "email": "",
    "first_name": "",
    "last_name": "",
    "is_staff": False,
    "is_superuser": False,
    "is_active": True,
    "date_joined": None,
}
TOKEN_COLUMNS = {"id": None, "key": None, "user_id": None, "created_at": None, "is_active": False}
PROVIDER_COLUMNS = {
    "id": None,
    "storage_type": None,
    "name": None,
    "owner_id": None,
    "description": "",
    "login": None,
    "is_active": True,  # a column only since the replaced service's migration 0007
}


@dataclass
class Upstream:
    """The rows read from the replaced service, as dicts of the columns above."""

    users: list[dict[str, Any]]
    tokens: list[dict[str, Any]]
    providers: list[dict[str, Any]]


@dataclass
class Tally:
    created: int = 0
    present: int = 0
    skipped: list[str] = field(default_factory=list)


class Command(OperatorCommand):
    help = "Import users, tokens (as digests) and storage providers of the replaced service."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database-url",
            required=True,
            help="the replaced service's database, e.g. postgres://user:pw@host/qlued",
        )
        parser.add_argument(
            "--keep-inactive",
            action="store_true",
            help="import tokens marked inactive there as inactive (default: active)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        upstream = read_upstream(options["database_url"])
        with transaction.atomic():
            users, owners = import_users(upstream.users)
            tokens, inactive = import_tokens(upstream.tokens, owners, options["keep_inactive"])
            providers = import_providers(upstream.providers, owners)
        self.stdout.write(
            f"Read {len(upstream.users)} users, {len(upstream.tokens)} tokens and "
            f"{len(upstream.providers)} storage providers."
        )
        if not (users.created or tokens.created or providers.created):
            self.stdout.write("Nothing to import: everything readable is already here.")
        for what, tally in (("Users", users), ("Tokens", tokens), ("Storage providers", providers)):
            self.stdout.write(f"{what}: {tally.created} created, {tally.present} already here.")
        if inactive:
            keep = "kept inactive" if options["keep_inactive"] else "imported active"
            self.stdout.write(
                f"Tokens marked inactive there, {keep} (the replaced service never "
                f"checked that flag): {inactive}."
            )
        for line in users.skipped + tokens.skipped + providers.skipped:
            self.stdout.write(f"Skipped {line}")


# ---- reading -------------------------------------------------------------------------------


def read_upstream(url: str) -> Upstream:
    """Every user, token and provider row of the replaced service's database, read only."""
    with _connection(url) as db:
        try:
            with db.cursor() as cursor:
                tables = set(db.introspection.table_names(cursor))
                if "backends_job" in tables:
                    raise CommandError(
                        "That is a database of this service, not of the replaced one."
                    )
                missing = [table for table in (TOKENS, PROVIDERS) if table not in tables]
                users = next((table for table in USER_TABLES if table in tables), None)
                if missing or users is None:
                    absent = ", ".join(missing or [" or ".join(USER_TABLES)])
                    raise CommandError(
                        f"No table {absent} there: is it the replaced qlued service's database?"
                    )
                return Upstream(
                    users=_rows(db, cursor, users, USER_COLUMNS),
                    tokens=_rows(db, cursor, TOKENS, TOKEN_COLUMNS),
                    providers=_rows(db, cursor, PROVIDERS, PROVIDER_COLUMNS),
                )
        except DatabaseError as exc:
            raise CommandError(
                f"Cannot read the replaced service's database: {_first(exc)}"
            ) from None


@contextmanager
def _connection(url: str) -> Iterator[BaseDatabaseWrapper]:
    """A connection of its own to `url`; an SQLite file is opened read-only."""
    try:
        parsed = dj_database_url.parse(url)
    except (ValueError, KeyError):
        raise CommandError(
            "--database-url is not a database URL: use sqlite:///PATH or "
            "postgres://USER:PASSWORD@HOST:PORT/NAME."
        ) from None
    if parsed["ENGINE"] == "django.db.backends.sqlite3":
        path = Path(parsed["NAME"])
        if not path.is_file():
            raise CommandError(f"No SQLite database at {path}.")
        parsed["NAME"] = f"file:{quote(str(path.resolve()))}?mode=ro"
    settings = {
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": {},
        "TIME_ZONE": None,
        "TEST": {},
        **parsed,
    }
    try:
        db = load_backend(settings["ENGINE"]).DatabaseWrapper(settings, ALIAS)
    except Exception as exc:  # e.g. a driver that is not installed
        raise CommandError(f"Cannot use {settings['ENGINE']}: {_first(exc)}") from None
    try:
        yield db
    finally:
        db.close()


def _rows(
    db: BaseDatabaseWrapper, cursor: Any, table: str, wanted: dict[str, Any]
) -> list[dict[str, Any]]:
    """The wanted columns of every row, by id; a column the table lacks takes its default."""
    cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)} WHERE 1 = 0")
    present = {column[0] for column in cursor.description}
    required = [name for name, default in wanted.items() if default is None]
    if absent := [name for name in required if name not in present]:
        raise CommandError(f"Table {table} has no column {', '.join(absent)}.")
    columns = [name for name in wanted if name in present]
    quoted = ", ".join(db.ops.quote_name(name) for name in columns)
    cursor.execute(
        f"SELECT {quoted} FROM {db.ops.quote_name(table)} ORDER BY {db.ops.quote_name('id')}"
    )
    return [{**wanted, **dict(zip(columns, row, strict=True))} for row in cursor.fetchall()]


def _first(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ---- writing -------------------------------------------------------------------------------


def import_users(rows: list[dict[str, Any]]) -> tuple[Tally, dict[Any, Any]]:
    """Create the users missing here (password hashes carried over); owners by upstream id."""
    User = get_user_model()
    tally, owners = Tally(), {}
    for row in rows:
        username = str(row["username"] or "")
        if not username or len(username) > 150:
            tally.skipped.append(f"user #{row['id']}: its username is empty or too long.")
            continue
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create(
                username=username,
                password=row["password"] or "!",
                email=row["email"] or "",
                first_name=row["first_name"] or "",
                last_name=row["last_name"] or "",
                is_staff=bool(row["is_staff"]),
                is_superuser=bool(row["is_superuser"]),
                is_active=bool(row["is_active"]),
                date_joined=_when(row["date_joined"]),
            )
            tally.created += 1
        else:
            tally.present += 1
        owners[row["id"]] = user
    return tally, owners


def import_tokens(
    rows: list[dict[str, Any]], owners: dict[Any, Any], keep_inactive: bool
) -> tuple[Tally, int]:
    """A digest for each token not here yet; and how many of those were marked inactive."""
    tally, inactive = Tally(), 0
    for row in rows:
        user = owners.get(row["user_id"])
        plaintext = row["key"] if isinstance(row["key"], str) else ""
        if user is None or not plaintext:
            why = "its user was not imported" if plaintext else "it is empty"
            tally.skipped.append(f"token #{row['id']}: {why}.")
            continue
        active = bool(row["is_active"])
        existing = Token.objects.filter(key=token_digest(plaintext)).first()
        if existing is None:
            inactive += not active
            Token.objects.create(
                key=token_digest(plaintext),
                user=user,
                created_at=_when(row["created_at"]),
                is_active=active or not keep_inactive,
            )
            tally.created += 1
        elif existing.user_id == user.pk:
            tally.present += 1
        else:
            tally.skipped.append(f"token #{row['id']}: here it belongs to another user.")
    return tally, inactive


def import_providers(rows: list[dict[str, Any]], owners: dict[Any, Any]) -> Tally:
    """Create the providers missing here, validated as the admin validates them."""
    tally = Tally()
    for row in rows:
        owner = owners.get(row["owner_id"])
        name = str(row["name"] or "")
        if owner is None:
            tally.skipped.append(f"storage provider {name!r}: its owner was not imported.")
            continue
        login = _json(row["login"])
        existing = StorageProviderDb.objects.filter(name=name.strip().lower()).first()
        if existing is not None:
            same = (existing.storage_type, existing.login, existing.owner_id) == (
                row["storage_type"],
                login,
                owner.pk,
            )
            if same:
                tally.present += 1
            else:
                tally.skipped.append(
                    f"storage provider {name!r}: one of that name, set up differently, is here."
                )
            continue
        try:
            create_storage_provider(
                name=name,
                storage_type=str(row["storage_type"]),
                login=login,
                owner=owner,
                description=str(row["description"] or "")[:500],
                is_active=bool(row["is_active"]),
            )
        except ValidationError as exc:
            tally.skipped.append(f"storage provider {name!r}: {validation_text(exc)}")
            continue
        tally.created += 1
    return tally


def _json(value: Any) -> Any:
    """A JSON column: SQLite and some drivers hand back its text, others the decoded value."""
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _when(value: Any) -> datetime:
    """A timestamp column as an aware datetime (SQLite hands back text); now if unreadable."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if not isinstance(value, datetime):
        return timezone.now()
    return value if value.tzinfo else value.replace(tzinfo=UTC)
