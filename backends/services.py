"""Writes of the API and of the operators' commands: submit jobs, register providers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import ValidationError as SchemaInvalid

from storage_providers import (
    AlreadyExists,
    CancelOutcome,
    NotFound,
    Place,
    StorageError,
    StorageProvider,
    build_provider,
)
from storage_providers.names import check_name
from storage_providers.schemas import INT64, BackendConfigIn, Document, JobShapeError, check_job

from . import commits, idempotency, ledger, quotas
from .auth import Caller
from .errors import Conflict, JobNotFound, JobRefused, StorageUnavailable
from .models import Job, JobStatus, StorageProviderDb
from .providers import provider_options
from .selectors import Backend, job_record

log = logging.getLogger(__name__)

WRITE_FAILED = "The job could not be written to storage. Try again later."
ID_ATTEMPTS = 5


def parse_job(job_text: str, default_wire_order: str) -> dict:
    """The posted job string as a checked job document, or JobRefused (406) saying why."""
    try:
        job: Any = json.loads(job_text)
    except (ValueError, RecursionError):
        raise JobRefused("The job is not valid JSON.") from None
    try:
        return check_job(job, default_wire_order)
    except JobShapeError as exc:
        raise JobRefused(str(exc)) from None


def submit_job(
    *, caller: Caller, backend: Backend, job_text: str, idempotency_key: str | None = None
) -> dict:
    """post_job: the first answer again for a key seen before, else quotas, then a new job.

    In SPEC §4's order: 429 (quota), 422 (a key used for another request), 409 (a key
    whose first post is still running), then 406 (the job itself).
    """
    if idempotency_key is None:
        return _submit(caller, backend, job_text, quotas.check(caller))
    print_ = idempotency.fingerprint(backend.full_name, job_text)
    remembered = idempotency.replay(caller, idempotency_key, print_)
    if remembered is not None:
        return remembered
    limits = quotas.check(caller)
    held = idempotency.reserve(caller, idempotency_key, print_)
    if isinstance(held, dict):
        return held
    try:
        answer = _submit(caller, backend, job_text, limits)
    except BaseException:
        held.delete()  # a refused post is not remembered
        raise
    idempotency.remember(held, answer)
    return answer


def _submit(caller: Caller, backend: Backend, job_text: str, limits: quotas.Limits) -> dict:
    """Record the job in the ledger, then hand it to storage (SPEC §7.1); the initial status."""
    job = parse_job(job_text, backend.config.wire_order)
    for _ in range(ID_ATTEMPTS):
        record = _ledger_row(caller, backend, job, limits)
        if record is None:
            continue  # the id is taken already (Dropbox ids hold 20 random bits a second)
        try:
            return backend.provider.submit_job(
                backend.display, record.job_id, job, username=caller.username
            )
        except AlreadyExists:
            record.delete()  # someone else's job under that id: leave it, draw another
        except StorageError as exc:
            _withdraw(backend, record, caller, exc)
            raise JobRefused(WRITE_FAILED) from None  # the job does not exist: job_id "None"
    log.error("no free job id on %s after %d draws", backend.entry.name, ID_ATTEMPTS)
    raise JobRefused(WRITE_FAILED)


def _ledger_row(
    caller: Caller, backend: Backend, job: Document, limits: quotas.Limits
) -> Job | None:
    """A ledger row under a fresh job id, or None when that id is recorded already;
    JobRefused (nothing recorded) when the row cannot be made durable.

    The quotas are counted again in the same transaction, so that concurrent posts
    cannot both take the last place.
    """
    job_id = backend.provider.new_job_id(backend.display, caller.username)
    shots = sum(experiment["shots"] for experiment in job.values())
    values = {
        "job_id": job_id,
        "storage_provider_id": backend.entry.pk,
        "display_name": backend.display,
        "owner_id": caller.user_id,
        "backend_name": backend.full_name,
        "status": JobStatus.QUEUED,
        "shots": min(max(shots, INT64.start), INT64.stop - 1),
        "experiments": len(job),
    }
    try:
        with commits.durable_commits():
            if not limits.any:  # nothing to count: the INSERT alone is one transaction
                return Job.objects.record(**values)
            with transaction.atomic():
                quotas.enforce_locked(caller, limits)
                return Job.objects.record(**values)
    except IntegrityError:
        return None
    except commits.NotDurable as exc:
        log.error("job %s not recorded durably on %s: %s", job_id, backend.entry.name, exc)
        Job.objects.filter(storage_provider_id=backend.entry.pk, job_id=job_id).delete()
        raise JobRefused(WRITE_FAILED) from None


def _withdraw(backend: Backend, record: Job, caller: Caller, exc: StorageError) -> None:
    """Undo a submission whose storage write failed: no file for a spooler, no ledger row."""
    log.warning("job %s could not be stored on %s: %s", record.job_id, backend.entry.name, exc)
    backend.provider.withdraw_job(backend.display, record.job_id, username=caller.username)
    record.delete()


def cancel_job(*, caller: Caller, backend: Backend, job_id: str) -> dict:
    """cancel_job: a queued job leaves the queue now, a running one is told to stop.

    The ledger decides between concurrent cancels (one sets `cancel_requested_at`);
    storage decides between the cancel and the job's spooler. 409 for a job that has
    ended, or is being cancelled already.
    """
    row = _cancellable(caller, backend, job_id)
    asked = timezone.now()
    if not Job.objects.filter(pk=row.pk, cancel_requested_at__isnull=True).update(
        cancel_requested_at=asked
    ):
        raise Conflict("The job is being cancelled already.", job_id=job_id)
    try:
        outcome = backend.provider.cancel_job(backend.display, job_id)
    except BaseException as exc:
        Job.objects.filter(pk=row.pk).update(cancel_requested_at=None)
        if isinstance(exc, NotFound):
            raise JobNotFound(job_id=job_id) from None
        if isinstance(exc, StorageError):
            raise StorageUnavailable() from None
        raise
    return job_record(_after_cancel(row, outcome, asked))


def _cancellable(caller: Caller, backend: Backend, job_id: str) -> Job:
    """The caller's open job on this backend, as storage sees it now."""
    if not backend.provider.is_job_id(job_id):
        raise JobNotFound()
    row = (
        Job.objects.filter(
            job_id=job_id,
            storage_provider_id=backend.entry.pk,
            display_name=backend.display,
            owner_id=caller.user_id,
        )
        .select_related("storage_provider")
        .first()
    )
    if row is None:
        raise JobNotFound(job_id=job_id)
    ledger.refresh([row])
    if not row.is_open:
        raise Conflict(f"The job has ended already ({row.status}).", job_id=job_id)
    return row


def _after_cancel(row: Job, outcome: CancelOutcome, asked: Any) -> Job:
    if outcome is CancelOutcome.TOO_LATE:
        Job.objects.filter(pk=row.pk).update(cancel_requested_at=None)
        raise Conflict("The job has ended already, or is being ended.", job_id=row.job_id)
    row.cancel_requested_at = asked
    if outcome is CancelOutcome.CANCELLED:
        row.status, row.finished_at = JobStatus.CANCELLED, timezone.now()
    else:  # out of the queue but not ended: its spooler has it
        row.status = JobStatus.RUNNING
        row.started_at = row.started_at or asked
    row.save(update_fields=["status", "started_at", "finished_at", "cancel_requested_at"])
    return row


def adopt_jobs(
    *, provider_row: StorageProviderDb, owner: AbstractBaseUser, display: str | None = None
) -> dict[str, tuple[int, int]]:
    """Record jobs that sit in storage but in no ledger (posted by the replaced service) as
    `owner`'s, so that they see them (SPEC §4); per backend, (adopted, already recorded).

    A job's submission time is the one its Dropbox id holds, else the time of adoption
    (the replaced service's ids are random); its status is then learned from storage.
    """
    provider = build_provider(
        provider_row.storage_type, provider_row.name, provider_row.login, provider_options()
    )
    try:
        displays = [check_name(display)] if display else provider.list_backends()
        report = {}
        for name in displays:
            try:
                config = BackendConfigIn.model_validate(provider.get_config(name))
            except (NotFound, SchemaInvalid):
                if display:
                    raise
                log.warning("adopt_jobs: %s on %s has no valid config", name, provider_row.name)
                continue
            report[name] = _adopt(provider, provider_row, owner, name, config)
        return report
    finally:
        provider.close()


def _adopt(
    provider: StorageProvider,
    row: StorageProviderDb,
    owner: AbstractBaseUser,
    display: str,
    config: BackendConfigIn,
) -> tuple[int, int]:
    ids = sorted(i for i in provider.list_ids(Place.STATUS, display) if provider.is_job_id(i))
    known = set(
        Job.objects.filter(storage_provider=row, job_id__in=ids).values_list("job_id", flat=True)
    )
    full_name = f"{row.name}_{display}_{'simulator' if config.simulator else 'hardware'}"
    now = timezone.now()
    rows = []
    for job_id in (i for i in ids if i not in known):
        shots, experiments = _size(provider.job_document(display, job_id))
        rows.append(
            Job(
                job_id=job_id,
                storage_provider=row,
                display_name=display,
                owner=owner,
                submitted_at=_submitted_at(job_id) or now,
                backend_name=full_name,
                shots=shots,
                experiments=experiments,
            )
        )
    Job.objects.bulk_create(rows, ignore_conflicts=True)
    ledger.refresh(Job.objects.filter(storage_provider=row, job_id__in=[r.job_id for r in rows]))
    return len(rows), len(known)


def _size(job: Document | None) -> tuple[int | None, int | None]:
    """(shots summed, experiments) of a stored job, or (None, None) when it cannot say."""
    if not isinstance(job, dict):
        return None, None
    shots = [e.get("shots") for e in job.values() if isinstance(e, dict)]
    if len(shots) != len(job) or not all(type(n) is int for n in shots):
        return None, len(job)
    return min(max(sum(shots), INT64.start), INT64.stop - 1), len(job)  # type: ignore[arg-type]


def _submitted_at(job_id: str) -> datetime | None:
    """The UTC time a Dropbox job id begins with (SPEC §6); ObjectIds of old jobs are random."""
    try:
        return datetime.strptime(job_id[:15], "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def get_or_create_user(username: str) -> AbstractBaseUser:
    """The user called `username`, created (without a usable password) when missing."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def create_storage_provider(
    *,
    name: str,
    storage_type: str,
    login: Any,
    owner: AbstractBaseUser,
    description: str = "",
    is_active: bool = True,
) -> StorageProviderDb:
    """Register a provider, validated exactly as the admin validates it."""
    row = StorageProviderDb(
        name=name,
        storage_type=storage_type,
        login=login,
        owner=owner,
        description=description,
        is_active=is_active,
    )
    row.full_clean()
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise ValidationError({"name": "A storage provider with this name exists."}) from None
    return row


def upload_backend_config(*, provider_row: StorageProviderDb, config: Any) -> BackendConfigIn:
    """Check a backend config against the stored schema, then write it into the provider."""
    parsed = BackendConfigIn.model_validate(config)
    provider = build_provider(
        provider_row.storage_type, provider_row.name, provider_row.login, provider_options()
    )
    try:
        provider.upload_config(check_name(parsed.display_name), parsed.model_dump(mode="json"))
    finally:
        provider.close()
    return parsed
