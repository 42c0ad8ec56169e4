"""Writes of the API and of the operators' commands: submit jobs, register providers."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from storage_providers import AlreadyExists, StorageError, build_provider
from storage_providers.names import check_name
from storage_providers.schemas import BackendConfigIn, JobShapeError, check_job

from .auth import Caller
from .errors import JobRefused
from .models import Job, StorageProviderDb
from .providers import provider_options
from .selectors import Backend

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


def submit_job(*, caller: Caller, backend: Backend, job_text: str) -> dict:
    """Record the job in the ledger, then hand it to storage (SPEC §7.1); the initial status."""
    job = parse_job(job_text, backend.config.wire_order)
    for _ in range(ID_ATTEMPTS):
        record = _ledger_row(caller, backend)
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


def _ledger_row(caller: Caller, backend: Backend) -> Job | None:
    """A ledger row under a fresh job id, or None when that id is recorded already."""
    job_id = backend.provider.new_job_id(backend.display, caller.username)
    try:
        with transaction.atomic():
            return Job.objects.create(
                job_id=job_id,
                storage_provider_id=backend.entry.pk,
                display_name=backend.display,
                owner_id=caller.user_id,
            )
    except IntegrityError:
        return None


def _withdraw(backend: Backend, record: Job, caller: Caller, exc: StorageError) -> None:
    """Undo a submission whose storage write failed: no file for a spooler, no ledger row."""
    log.warning("job %s could not be stored on %s: %s", record.job_id, backend.entry.name, exc)
    backend.provider.withdraw_job(backend.display, record.job_id, username=caller.username)
    record.delete()


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
