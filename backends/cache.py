"""Per-process caches that live at most CACHE_SECONDS (SPEC §4).

Every gunicorn worker keeps its own; a deactivated token or provider is refused by
all of them once the entries they hold run out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings

V = TypeVar("V")

_all: list[TTLCache] = []


class TTLCache(Generic[V]):
    """A dict whose entries expire after CACHE_SECONDS; exceptions are never cached."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._data: dict[Hashable, tuple[float, V]] = {}
        self._max = max_entries
        _all.append(self)

    def get(
        self, key: Hashable, load: Callable[[], V], keep: Callable[[V], bool] | None = None
    ) -> V:
        """The cached value of `key`, loading it when absent or stale (and, with `keep`,
        remembering only values it approves)."""
        hit = self.held(key)
        if hit is not None:
            return hit[1]
        value = load()
        if keep is None or keep(value):
            self.put(key, value)
        return value

    def held(self, key: Hashable) -> tuple[float, V] | None:
        """(expiry, value) of `key` while it is fresh, else None; expiry is time.monotonic()'s."""
        hit = self._data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit
        return None

    def expiry(self, key: Hashable) -> float:
        """When the value held for `key` goes stale (0.0 when none is held)."""
        hit = self._data.get(key)
        return hit[0] if hit is not None else 0.0

    def put(self, key: Hashable, value: V, until: float | None = None) -> None:
        """Remember `value` for CACHE_SECONDS, or only `until` when that comes sooner
        (nothing, when caching is off)."""
        ttl = settings.CACHE_SECONDS
        if ttl > 0:
            expiry = time.monotonic() + ttl
            if until is not None:
                expiry = min(expiry, until)
            if len(self._data) >= self._max:
                self._data.clear()  # bounded memory beats a perfect hit rate
            self._data[key] = (expiry, value)

    def clear(self) -> None:
        self._data.clear()


def clear_all() -> None:
    """Forget everything cached in this process (tests, and after admin edits here)."""
    for cache in _all:
        cache.clear()
