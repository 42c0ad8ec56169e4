"""Per-user limits on post_job (issue 14): jobs open at once, and jobs posted per minute.

Both are counted in the ledger, so every worker sees the same numbers. The count and
the new row are one transaction that locks the caller's user row, so two posts at
once cannot both take the last place. Defaults are the QUOTA_* settings; a
UserQuota row (in the admin) overrides them per user; 0 means no limit. Each worker
remembers a user's row for CACHE_SECONDS, as it does their token: an edit in the
admin applies to every worker within that time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from . import ledger
from .auth import Caller
from .cache import TTLCache
from .errors import TooManyRequests
from .models import OPEN_STATUSES, Job, UserQuota

MINUTE = timedelta(minutes=1)
OPEN_RETRY_SECONDS = 30  # no clock says when a job ends: a guess worth waiting for


@dataclass(frozen=True)
class Limits:
    open_jobs: int
    per_minute: int

    @property
    def any(self) -> bool:
        """Whether there is anything to count (0 is no limit)."""
        return bool(self.open_jobs or self.per_minute)


# A user's own (max_queued_jobs, max_posts_per_minute); (None, None) without a row.
_own: TTLCache[tuple[int | None, int | None]] = TTLCache()


def _own_limits(user_id: int) -> tuple[int | None, int | None]:
    row = (
        UserQuota.objects.filter(user_id=user_id)
        .values_list("max_queued_jobs", "max_posts_per_minute")
        .first()
    )
    return row if row is not None else (None, None)


def limits_of(caller: Caller) -> Limits:
    """The caller's own limits, or the settings' where the admin set none."""
    open_jobs, per_minute = _own.get(caller.user_id, lambda: _own_limits(caller.user_id))
    return Limits(
        open_jobs=settings.QUOTA_QUEUED_JOBS if open_jobs is None else open_jobs,
        per_minute=settings.QUOTA_POSTS_PER_MINUTE if per_minute is None else per_minute,
    )


def check(caller: Caller) -> Limits:
    """429 when the caller may not post now; the ledger first learns which jobs have ended."""
    limits = limits_of(caller)
    _check_rate(caller, limits)
    if limits.open_jobs and _open_count(caller) >= limits.open_jobs:
        open_rows = Job.objects.filter(owner_id=caller.user_id, status__in=OPEN_STATUSES)
        ledger.refresh(open_rows.select_related("storage_provider").order_by("submitted_at"))
    _check_open(caller, limits)
    return limits


def enforce_locked(caller: Caller, limits: Limits) -> None:
    """Inside the transaction that records a job: lock the caller, then count again.

    With no limit to count there is nothing to lock either.
    """
    if not limits.any:
        return
    locked = get_user_model().objects.select_for_update().filter(pk=caller.user_id)
    list(locked.values_list("pk", flat=True))  # SELECT ... FOR UPDATE (SQLite: BEGIN IMMEDIATE)
    _check_rate(caller, limits)
    _check_open(caller, limits)


def _open_count(caller: Caller) -> int:
    return Job.objects.filter(owner_id=caller.user_id, status__in=OPEN_STATUSES).count()


def _check_open(caller: Caller, limits: Limits) -> None:
    if limits.open_jobs and _open_count(caller) >= limits.open_jobs:
        raise TooManyRequests(
            f"Too many jobs: at most {limits.open_jobs} may be queued or running at once. "
            "Try again when one of them has ended.",
            retry_after=OPEN_RETRY_SECONDS,
        )


def _check_rate(caller: Caller, limits: Limits) -> None:
    if not limits.per_minute:
        return
    now = timezone.now()
    recent = Job.objects.filter(owner_id=caller.user_id, submitted_at__gt=now - MINUTE)
    if recent.count() < limits.per_minute:
        return
    # A place frees when the post before the newest `per_minute - 1` is a minute old.
    newest_first = recent.order_by("-submitted_at").values_list("submitted_at", flat=True)
    leaving = newest_first[limits.per_minute - 1]
    wait = math.ceil((leaving + MINUTE - now).total_seconds())
    raise TooManyRequests(
        f"Too many posts: at most {limits.per_minute} jobs a minute. "
        f"Try again in {max(1, wait)} seconds.",
        retry_after=wait,
    )
