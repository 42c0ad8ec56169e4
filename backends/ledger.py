"""The ledger learns from storage where its open jobs stand (issue 14).

Rows whose job has ended are never looked up again. The open ones are grouped by
backend and each group costs a few round trips, whatever its size (the provider's
`sightings`): the queue and `running` are listed once (kept CACHE_SECONDS), and
statuses, ending records and leases are read in bulk. Times are the spooler's own
when it keeps them (the built-in one does), else when the service first saw the change.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from storage_providers import CANCEL_DETAIL, Sighting, StorageError, StorageProvider

from .errors import StorageUnavailable
from .models import Job, JobStatus
from .providers import ProviderEntry, active_entries, provider_for

log = logging.getLogger(__name__)

LEARNED = ["status", "started_at", "finished_at"]


def refresh(rows: Iterable[Job]) -> None:
    """Bring the open rows among `rows` up to date with storage, in place and in the database."""
    groups: dict[tuple[int, str], list[Job]] = defaultdict(list)
    for row in rows:
        if row.is_open:
            groups[(row.storage_provider_id, row.display_name)].append(row)
    if not groups:
        return
    entries = {entry.pk: entry for entry in active_entries()}
    for (pk, display), group in groups.items():
        entry = entries.get(pk)
        if entry is not None:  # a deactivated provider's jobs keep what the ledger knows
            _refresh_group(entry, display, group)


def _refresh_group(entry: ProviderEntry, display: str, group: list[Job]) -> None:
    try:
        provider = provider_for(entry)
        seen = _look(provider, display, group)
    except (StorageError, StorageUnavailable) as exc:
        log.warning("could not refresh jobs of %s on %s: %s", display, entry.name, exc)
        return
    now = timezone.now()
    changed = [row for row in group if row.job_id in seen and learn(row, seen[row.job_id], now)]
    if changed:
        Job.objects.bulk_update(changed, LEARNED)


def _look(provider: StorageProvider, display: str, group: list[Job]) -> dict[str, Sighting]:
    ids = [row.job_id for row in group if provider.is_job_id(row.job_id)]
    unstarted = {row.job_id for row in group if row.started_at is None}
    return provider.sightings(display, ids, unstarted=unstarted, max_age=settings.CACHE_SECONDS)


def learn(row: Job, seen: Sighting, now: datetime) -> bool:
    """Update `row` from a sighting of its job; whether anything changed."""
    before = (row.status, row.started_at, row.finished_at)
    if seen.state == "QUEUED":
        row.status = JobStatus.QUEUED
    elif seen.state == "RUNNING":
        row.status = JobStatus.RUNNING
        row.started_at = row.started_at or seen.started_at or now
    elif seen.state in ("DONE", "ERROR"):
        row.status = _final_status(row, seen)
        row.started_at = seen.started_at or row.started_at
        row.finished_at = seen.finished_at or row.finished_at or now
    return (row.status, row.started_at, row.finished_at) != before


def _final_status(row: Job, seen: Sighting) -> str:
    """DONE or ERROR; CANCELLED only for an ERROR its owner asked for, in the words used for it."""
    asked = row.cancel_requested_at is not None
    if seen.state == "ERROR" and asked and seen.detail == CANCEL_DETAIL:
        return JobStatus.CANCELLED
    return JobStatus.DONE if seen.state == "DONE" else JobStatus.ERROR
