"""From StorageProviderDb rows to provider objects, once per process.

A provider object (its client, its connection pool) is kept as long as its entry
is unchanged; the entries themselves are re-read at most every CACHE_SECONDS, so
that deactivating a provider in the admin takes effect in every worker.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from storage_providers import StorageProvider, TypeUnavailable, build_provider
from storage_providers.dropbox import DropboxOptions
from storage_providers.mongodb import MongoTimeouts
from storage_providers.registry import LoginError, ProviderOptions

from .cache import TTLCache
from .errors import StorageUnavailable, UnknownBackend
from .models import StorageProviderDb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderEntry:
    """A snapshot of an active StorageProviderDb row."""

    pk: int
    name: str
    storage_type: str
    login_json: str


_entries: TTLCache[ProviderEntry | None] = TTLCache()
_active: TTLCache[list[ProviderEntry]] = TTLCache()
_objects: dict[int, tuple[ProviderEntry, ProviderOptions, StorageProvider]] = {}
OPTION_SETTINGS = frozenset(
    {
        "MONGODB_SERVER_SELECTION_TIMEOUT",
        "MONGODB_CONNECT_TIMEOUT",
        "MONGODB_SOCKET_TIMEOUT",
        "DROPBOX_TIMEOUT",
        "DROPBOX_CACHE_SECONDS",
    }
)


def _snapshot(row: StorageProviderDb) -> ProviderEntry:
    return ProviderEntry(row.pk, row.name, row.storage_type, json.dumps(row.login, sort_keys=True))


def active_entry(name: str) -> ProviderEntry | None:
    """The active provider called `name` (case-sensitive), or None."""

    def load() -> ProviderEntry | None:
        row = StorageProviderDb.objects.filter(name=name, is_active=True).first()
        return _snapshot(row) if row else None

    return _entries.get(name, load)


def active_entries() -> list[ProviderEntry]:
    """Every active provider, by name."""
    return _active.get(
        "all",
        lambda: [
            _snapshot(r) for r in StorageProviderDb.objects.filter(is_active=True).order_by("name")
        ],
    )


@functools.cache
def provider_options() -> ProviderOptions:
    """The settings every provider object of this process is built with (made once; again
    after one of them is changed, as tests do)."""
    return _build_options()


@receiver(setting_changed)
def _options_changed(*, setting: str, **kwargs: object) -> None:
    if setting in OPTION_SETTINGS:
        provider_options.cache_clear()


def _build_options() -> ProviderOptions:
    return ProviderOptions(
        mongo_timeouts=MongoTimeouts(
            server_selection=settings.MONGODB_SERVER_SELECTION_TIMEOUT,
            connect=settings.MONGODB_CONNECT_TIMEOUT,
            socket=settings.MONGODB_SOCKET_TIMEOUT,
        ),
        dropbox=DropboxOptions(
            timeout=settings.DROPBOX_TIMEOUT,
            config_cache_seconds=settings.DROPBOX_CACHE_SECONDS,
        ),
    )


def provider_for(entry: ProviderEntry) -> StorageProvider:
    """The provider object of `entry`, built once and reused until the entry changes."""
    options = provider_options()
    held = _objects.get(entry.pk)
    if held is not None and held[:2] == (entry, options):
        return held[2]
    try:
        login = json.loads(entry.login_json)
        provider = build_provider(entry.storage_type, entry.name, login, options)
    except TypeUnavailable:
        raise StorageUnavailable(f"Storage type {entry.storage_type} is not available.") from None
    except LoginError:
        log.error("storage provider %s has an invalid login", entry.name)
        raise StorageUnavailable() from None
    if held is not None:
        held[2].close()
    _objects[entry.pk] = (entry, options, provider)
    return provider


def forget_providers() -> None:
    """Close and drop every provider object of this process (tests; they are rebuilt on use)."""
    for _, _, provider in _objects.values():
        provider.close()
    _objects.clear()


def is_current(entry: ProviderEntry, provider: StorageProvider) -> bool:
    """Whether `provider` is still the object this process holds for `entry`, built with
    the current options (not closed since, nor replaced)."""
    held = _objects.get(entry.pk)
    return held is not None and held[2] is provider and held[1] is provider_options()


def entry_expiry(name: str) -> float:
    """When the cached entry of provider `name` is read again (time.monotonic()'s)."""
    return _entries.expiry(name)


def provider_named(name: str) -> tuple[ProviderEntry, StorageProvider]:
    """The active provider called `name` and its object; UnknownBackend when there is none."""
    entry = active_entry(name)
    if entry is None:
        raise UnknownBackend()
    return entry, provider_for(entry)
