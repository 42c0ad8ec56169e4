"""Reads of the dashboard and of /metrics, composed from the API's own selectors."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from backends import ledger, selectors
from backends.auth import Caller
from backends.errors import JobFailed, QluedError, StorageUnavailable, UnknownBackend
from backends.models import OPEN_STATUSES, Job, JobStatus, Token
from backends.providers import active_entries, provider_for
from storage_providers import Place, StorageError

from .histogram import Histogram, histogram, series
from .models import TokenName

log = logging.getLogger(__name__)


def caller_of(user: AbstractBaseUser) -> Caller:
    """The logged-in user as the API's selectors and services know a caller."""
    return Caller(user_id=int(user.pk), username=user.get_username())


# ---- backends -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendView:
    """One backend as the Backends page and /metrics show it."""

    backend: selectors.Backend
    status: dict
    queue_depth: int | None  # None: the queue could not be listed
    last_queue_check: datetime | None

    @property
    def full_name(self) -> str:
        return self.backend.full_name

    @property
    def seconds_since_check(self) -> float | None:
        if self.last_queue_check is None:
            return None
        return max(0.0, (timezone.now() - self.last_queue_check).total_seconds())


def backends_overview() -> list[BackendView]:
    """Every backend with its status and queue, for the Backends page and /metrics."""
    return [_view(backend) for backend in configured_backends()]


def configured_backends() -> list[selectors.Backend]:
    """Every backend of every active provider, as `GET backends` lists them (no queue read)."""
    found = []
    for entry in active_entries():
        try:
            provider = provider_for(entry)
            displays = sorted(provider.list_backends())
        except (StorageError, StorageUnavailable) as exc:
            log.warning("dashboard: skipping storage provider %s: %s", entry.name, exc)
            continue
        for display in displays:
            if "dummy" in display:
                continue
            try:
                config = selectors.stored_config(entry, provider, display)
            except (UnknownBackend, StorageUnavailable):
                continue
            found.append(selectors.Backend(entry, provider, display, config))
    return found


def _view(backend: selectors.Backend) -> BackendView:
    checked = backend.config.last_queue_check
    if checked is not None and checked.tzinfo is None:
        checked = checked.replace(tzinfo=UTC)  # Mongo hands back naive UTC
    try:
        depth: int | None = len(backend.provider.list_ids(Place.QUEUED, backend.display))
    except StorageError:
        depth = None
    status = selectors.backend_status(backend, settings.T_TIMEOUT)
    return BackendView(backend, status, depth, checked)


def backend_choices() -> list[str]:
    """Full names of every backend, for the jobs filter (a page that reloads itself)."""
    return [backend.full_name for backend in configured_backends()]


# ---- jobs -----------------------------------------------------------------------------------


@dataclass
class JobPage:
    """What the job page shows: the jobs API's record, and the result or the reason it failed."""

    record: dict
    histograms: list[Histogram] = field(default_factory=list)
    error_text: str = ""
    note: str = ""
    job: dict | None = None

    @property
    def is_open(self) -> bool:
        return self.record["status"] in OPEN_STATUSES


def job_page(*, caller: Caller, job_id: str) -> JobPage:
    """One of the caller's jobs; JobNotFound (as on the API) for anyone else's."""
    page = JobPage(record=selectors.one_job(caller=caller, job_id=job_id))
    try:
        backend = selectors.resolve_backend(page.record["backend_name"], settings.DEFAULT_STORAGE)
    except QluedError:
        page.note = "The backend of this job is not available right now."
        return page
    page.job = _job_document(backend, job_id)
    if page.record["status"] in (JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED):
        _add_outcome(page, caller, backend, job_id)
    return page


def _job_document(backend: selectors.Backend, job_id: str) -> dict | None:
    try:
        return backend.provider.job_document(backend.display, job_id)
    except StorageError:
        return None


def _add_outcome(page: JobPage, caller: Caller, backend: selectors.Backend, job_id: str) -> None:
    try:
        result = selectors.job_result(caller, backend, job_id)
    except JobFailed as failed:
        page.error_text = str(failed.status.get("error_message") or failed.detail)
        return
    except QluedError as exc:
        page.note = exc.detail
        return
    if "results" not in result:
        page.note = str(result.get("detail", ""))
        return
    page.histograms = histograms_of(selectors.with_counts(result))


def histograms_of(result: dict) -> list[Histogram]:
    """One histogram of counts per experiment of a result that has `data.counts`."""
    charts = []
    for index, experiment in enumerate(result.get("results") or []):
        if not isinstance(experiment, dict):
            continue
        header = experiment.get("header") or {}
        name = str(header.get("name") or f"experiment {index}")
        counts = (experiment.get("data") or {}).get("counts") or {}
        charts.append(histogram(name, {str(k): int(v) for k, v in counts.items()}))
    return charts


def refresh_open_jobs(since: datetime | None = None) -> None:
    """Bring open ledger rows up to date with storage (oldest first, as spoolers take them)."""
    rows = Job.objects.filter(status__in=OPEN_STATUSES)
    if since is not None:
        rows = rows.filter(submitted_at__gte=since)
    ledger.refresh(rows.order_by("submitted_at")[: selectors.REFRESH_LIMIT])


def ledger_label(row: dict[str, Any]) -> str:
    """A backend's name in grouped ledger rows: the full name, or provider_display for old rows."""
    return str(row["backend_name"] or f"{row['storage_provider__name']}_{row['display_name']}")


def jobs_by_backend_and_status() -> dict[str, dict[str, int]]:
    """Ledger counts per backend and status (for /metrics)."""
    counts: dict[str, dict[str, int]] = {}
    grouped = (
        Job.objects.values("backend_name", "storage_provider__name", "display_name", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in grouped:
        per = counts.setdefault(ledger_label(row), {})
        per[row["status"]] = per.get(row["status"], 0) + row["n"]
    return counts


# ---- staff ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendDay:
    """One backend's last 24 hours: jobs submitted per hour, and how many of those ending failed."""

    backend: str
    per_hour: list[int]  # oldest hour first
    done: int
    failed: int
    chart: Histogram

    @property
    def submitted(self) -> int:
        return sum(self.per_hour)

    @property
    def error_rate(self) -> float | None:
        ended = self.done + self.failed
        return self.failed / ended if ended else None


def last_day(now: datetime | None = None) -> tuple[list[datetime], list[BackendDay]]:
    """The 24 hour slots (their starts) and each backend's numbers in them."""
    now = now or timezone.now()
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    hours = [first + timedelta(hours=h) for h in range(24)]
    refresh_open_jobs(since=first - timedelta(days=1))
    keys = ("backend_name", "storage_provider__name", "display_name")
    submitted = (
        Job.objects.filter(submitted_at__gte=first)
        .annotate(hour=TruncHour("submitted_at", tzinfo=UTC))
        .values(*keys, "hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    ended = (
        Job.objects.filter(finished_at__gte=now - timedelta(hours=24))
        .values(*keys)
        .annotate(
            done=Count("pk", filter=Q(status=JobStatus.DONE)),
            failed=Count("pk", filter=Q(status=JobStatus.ERROR)),
        )
        .order_by()
    )
    slot_of = {hour: index for index, hour in enumerate(hours)}
    slots: dict[str, list[int]] = {}
    for row in submitted:
        if row["hour"] in slot_of:  # a clock ahead of ours could name a later hour
            slots.setdefault(ledger_label(row), [0] * 24)[slot_of[row["hour"]]] += row["n"]
    outcomes: dict[str, tuple[int, int]] = {}
    for row in ended:
        done, failed = outcomes.get(ledger_label(row), (0, 0))
        outcomes[ledger_label(row)] = (done + row["done"], failed + row["failed"])
    labels = [hour.strftime("%H") for hour in hours]
    days = []
    for name in sorted(set(slots) | set(outcomes)):
        per_hour = slots.get(name, [0] * 24)
        chart = series(name, labels, per_hour, unit="job")
        days.append(BackendDay(name, per_hour, *outcomes.get(name, (0, 0)), chart=chart))
    return hours, days


# ---- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRow:
    pk: int
    name: str
    created_at: datetime
    is_active: bool
    digest_prefix: str


def users_tokens(user: AbstractBaseUser) -> list[TokenRow]:
    """The user's tokens, newest first; only a digest prefix identifies each (never the token)."""
    rows = Token.objects.filter(user=user).select_related("dashboard_name")
    return [
        TokenRow(t.pk, _token_name(t), t.created_at, t.is_active, t.key[:8])
        for t in rows.order_by("-created_at", "-pk")
    ]


def _token_name(token: Token) -> str:
    try:
        return str(token.dashboard_name.name)  # type: ignore[attr-defined]
    except TokenName.DoesNotExist:
        return ""
