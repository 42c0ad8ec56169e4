"""Count one failed attempt and say how many this client made in the current minute."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import caches
from django.db import connection

from .models import FailedAttempts

log = logging.getLogger(__name__)
WINDOW = 60


def count_failure(client: str) -> tuple[int, int]:
    """Record a wrong token from `client`: (attempts this minute, seconds until it ends)."""
    now = time.time()
    window = int(now // WINDOW)
    left = max(1, int((window + 1) * WINDOW - now))
    if settings.THROTTLE_CACHE:
        try:
            return _in_cache(client, window), left
        except Exception as exc:  # the shared cache is down: count in the database meanwhile
            log.warning("failed-token counter: the cache does not answer (%s)", type(exc).__name__)
    return _in_database(client, window), left


def _in_database(client: str, window: int) -> int:
    """One upsert, atomic on SQLite and PostgreSQL alike, so that workers never lose a count."""
    q = connection.ops.quote_name
    table, count_ = q(FailedAttempts._meta.db_table), q("count")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({q('client')}, {q('minute')}, {count_}) VALUES (%s, %s, 1) "
            f"ON CONFLICT ({q('client')}, {q('minute')}) "
            f"DO UPDATE SET {count_} = {table}.{count_} + 1 RETURNING {count_}",
            [client, window],
        )
        count = int(cursor.fetchone()[0])
    if count == 1:  # a new minute for this client: drop what is over
        FailedAttempts.objects.filter(minute__lt=window - 1).delete()
    return count


def _in_cache(client: str, window: int) -> int:
    cache = caches[settings.THROTTLE_CACHE]
    key = f"qlued:failed-tokens:{client}:{window}"
    cache.add(key, 0, timeout=2 * WINDOW)
    try:
        return int(cache.incr(key))
    except ValueError:  # evicted between add and incr
        cache.add(key, 1, timeout=2 * WINDOW)
        return 1
