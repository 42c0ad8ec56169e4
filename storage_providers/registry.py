"""One table from storage type to its login shape and its provider class.

Django's model validation, the management commands, the API's provider factory
and the spooler's command line all read this table, so a type is described once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .base import StorageProvider
from .dropbox import DropboxOptions
from .local import LocalProvider
from .mongodb import MongoTimeouts
from .schemas import Document


class _Login(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LocalLogin(_Login):
    """A folder; it need not exist yet (created on the first write)."""

    base_path: str


class MongodbLogin(_Login):
    mongodb_username: str
    mongodb_password: str
    mongodb_database_url: str


class DropboxLogin(_Login):
    app_key: str
    app_secret: str
    refresh_token: str


@dataclass(frozen=True)
class ProviderOptions:
    """Settings of the process that builds providers (the API's, or a spooler's defaults)."""

    mongo_timeouts: MongoTimeouts = field(default_factory=MongoTimeouts)
    dropbox: DropboxOptions = field(default_factory=DropboxOptions)


@dataclass(frozen=True)
class StorageKind:
    """What the project knows of one storage type: everything else reads it from here."""

    label: str
    login: type[_Login]
    secret_fields: tuple[str, ...]
    login_example: str
    factory: Callable[[str, Any, ProviderOptions], StorageProvider] | None  # None: not built


def _local(name: str, login: LocalLogin, options: ProviderOptions) -> StorageProvider:
    return LocalProvider(name, base_path=login.base_path)


def _mongodb(name: str, login: MongodbLogin, options: ProviderOptions) -> StorageProvider:
    from .mongodb import MongodbProvider  # its driver is imported only when it is used

    return MongodbProvider(
        name,
        username=login.mongodb_username,
        password=login.mongodb_password,
        database_url=login.mongodb_database_url,
        timeouts=options.mongo_timeouts,
    )


def _dropbox(name: str, login: DropboxLogin, options: ProviderOptions) -> StorageProvider:
    from .dropbox import DropboxProvider  # its SDK is imported only when it is used

    return DropboxProvider(
        name,
        app_key=login.app_key,
        app_secret=login.app_secret,
        refresh_token=login.refresh_token,
        options=options.dropbox,
    )


KINDS: dict[str, StorageKind] = {
    "dropbox": StorageKind(
        "Dropbox",
        DropboxLogin,
        ("app_secret", "refresh_token"),
        '{"app_key": "…", "app_secret": "…", "refresh_token": "…"}',
        _dropbox,
    ),
    "mongodb": StorageKind(
        "MongoDB",
        MongodbLogin,
        ("mongodb_password",),
        '{"mongodb_username": "lab", "mongodb_password": "…", '
        '"mongodb_database_url": "cluster0.example.net" or "mongodb://host:27017/"}',
        _mongodb,
    ),
    "local": StorageKind("Local folder", LocalLogin, (), '{"base_path": "/srv/qlued"}', _local),
}


def login_help() -> str:
    """One line per storage type: the login it takes (the admin form's help text)."""
    return "; ".join(f"{kind}: {k.login_example}" for kind, k in KINDS.items())


MASK = "********"


class LoginError(ValueError):
    """A login does not fit its storage type; the text names the field, never its value."""


class TypeUnavailable(LookupError):
    """The storage type is known but this build has no provider for it."""


def check_login(storage_type: str, login: Any) -> BaseModel:
    """Validate `login` for `storage_type` and return it parsed."""
    kind = KINDS.get(storage_type)
    if kind is None:
        raise LoginError(f"Unknown storage type {storage_type!r}; use one of {', '.join(KINDS)}.")
    if not isinstance(login, dict):
        raise LoginError("The login must be a JSON object.")
    try:
        return kind.login.model_validate(login)
    except ValidationError as exc:
        problems = sorted({_describe(err) for err in exc.errors()})
        raise LoginError(f"Invalid {storage_type} login: {'; '.join(problems)}.") from None


def _describe(err: Any) -> str:
    field = ".".join(str(p) for p in err["loc"]) or "login"
    if err["type"] == "missing":
        return f"'{field}' is missing"
    if err["type"] == "extra_forbidden":
        return f"'{field}' is not expected"
    return f"'{field}' must be a string"


def masked_login(storage_type: str, login: Any) -> Document:
    """The login with its secrets replaced, for lists and logs."""
    kind = KINDS.get(storage_type)
    secrets = kind.secret_fields if kind else ()
    if not isinstance(login, dict):
        return {}
    return {k: (MASK if k in secrets else v) for k, v in login.items()}


def build_provider(
    storage_type: str, name: str, login: Any, options: ProviderOptions | None = None
) -> StorageProvider:
    """A provider object for a stored entry; TypeUnavailable when this build lacks the type."""
    parsed = check_login(storage_type, login)
    factory = KINDS[storage_type].factory
    if factory is None:
        raise TypeUnavailable(storage_type)
    return factory(name, parsed, options or ProviderOptions())
