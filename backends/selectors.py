"""Reads of the API: backends, their configs and status, and a caller's jobs."""

from __future__ import annotations

import base64
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.db.models import Q, QuerySet
from pydantic import ValidationError

from storage_providers import InvalidName, NotFound, StorageError, StorageProvider
from storage_providers.names import DROPBOX_JOB_ID_RE, OBJECT_ID_RE, is_name
from storage_providers.schemas import BackendConfigIn, status_msg

from . import ledger
from .auth import Caller
from .cache import TTLCache
from .errors import InvalidParameter, JobFailed, JobNotFound, StorageUnavailable, UnknownBackend
from .models import OPEN_STATUSES, Job, JobStatus
from .providers import (
    ProviderEntry,
    active_entries,
    entry_expiry,
    is_current,
    provider_for,
    provider_named,
)

log = logging.getLogger(__name__)

SUFFIXES = {True: "simulator", False: "hardware"}
QISKIT_CONSTANTS = {
    "conditional": False,
    "local": False,
    "open_pulse": False,
    "memory": True,
    "coupling_map": "linear",
    "dynamic_reprate_enabled": False,
}
NOT_YET = "The job is done, but its result is not written yet. Try again in a moment."

_configs: TTLCache[BackendConfigIn | None] = TTLCache()
_backends: TTLCache[Backend] = TTLCache()  # resolve_backend's answers, by URL name
_listing: TTLCache[bytes] = TTLCache()
_ledger: TTLCache[bool] = TTLCache()
# Finished jobs are read again and again by polling clients; what they read cannot change.
_final_statuses: TTLCache[dict] = TTLCache()
_results: TTLCache[dict] = TTLCache(max_entries=64)  # results can be large
# get_config's rendered answer, with the config it was rendered from.
_config_answers: TTLCache[tuple[BackendConfigIn, bytes]] = TTLCache()
# get_backend_status's, likewise; it holds until `operational` would turn.
_status_answers: TTLCache[tuple[BackendConfigIn, bytes]] = TTLCache()
FINAL = frozenset({"DONE", "ERROR"})


@dataclass(frozen=True)
class Backend:
    """A backend a URL named, resolved to its provider and its stored config."""

    entry: ProviderEntry
    provider: StorageProvider
    display: str
    config: BackendConfigIn

    @property
    def full_name(self) -> str:
        return f"{self.entry.name}_{self.display}_{SUFFIXES[self.config.simulator]}"


def split_name(name: str, default_storage: str) -> tuple[str, str, str | None]:
    """(provider, display, suffix) of a backend name in a URL (SPEC §2)."""
    parts = name.split("_")
    if len(parts) == 1:
        provider, display, suffix = default_storage, parts[0], None
    elif len(parts) == 3:
        provider, display, suffix = parts
        if suffix not in SUFFIXES.values():
            raise UnknownBackend()
    else:
        raise UnknownBackend()
    if not (is_name(provider) and is_name(display)):
        raise UnknownBackend()
    return provider, display, suffix


def stored_config(entry: ProviderEntry, provider: StorageProvider, display: str) -> BackendConfigIn:
    """The config of `display` (cached briefly); UnknownBackend when there is none."""

    def load() -> BackendConfigIn | None:
        try:
            return BackendConfigIn.model_validate(provider.get_config(display))
        except (NotFound, InvalidName):
            return None
        except ValidationError:
            log.warning("config of %s on %s does not fit the schema", display, entry.name)
            return None
        except StorageError as exc:
            log.warning("storage %s unreachable: %s", entry.name, exc)
            raise StorageUnavailable() from None

    config = _configs.get((entry, display), load)
    if config is None:
        raise UnknownBackend()
    return config


def resolve_backend(name: str, default_storage: str) -> Backend:
    """The backend named in a URL, or UnknownBackend (404) before storage is touched.

    A name resolved already is answered from memory until the first of its parts (the
    provider's entry, the stored config) is due to be read again, so that it is never
    older than they may be; an unknown name is never remembered.
    """
    key = (name, default_storage)
    held = _backends.held(key)
    if held is not None and is_current(held[1].entry, held[1].provider):
        return held[1]
    provider_name, display, suffix = split_name(name, default_storage)
    entry, provider = provider_named(provider_name)
    config = stored_config(entry, provider, display)
    backend = Backend(entry, provider, display, config)
    if suffix is not None and suffix != SUFFIXES[config.simulator]:
        raise UnknownBackend()
    until = min(entry_expiry(provider_name), _configs.expiry((entry, display)))
    _backends.put(key, backend, until=until)
    return backend


def served_config(backend: Backend, url_base: str) -> dict:
    """BackendConfigSchemaOut of SPEC §3; `url_base` ends with the mount's slash."""
    c = backend.config
    return {
        "description": c.description,
        "display_name": c.display_name,
        "backend_version": c.version,
        "n_qubits": c.num_wires,
        "backend_name": backend.full_name,
        "basis_gates": [gate.name for gate in c.gates],
        "max_experiments": c.max_experiments,
        "max_shots": c.max_shots,
        "simulator": c.simulator,
        "gates": [gate.model_dump() for gate in c.gates],
        "supported_instructions": c.supported_instructions,
        "cold_atom_type": c.cold_atom_type,
        "wire_order": c.wire_order,
        "num_species": c.num_species,
        "url": f"{url_base}{backend.full_name}/",
        **QISKIT_CONSTANTS,
    }


def served_config_json(backend: Backend, url_base: str) -> bytes:
    """served_config as JSON, rendered once per config (a poll of it is a dict lookup)."""
    key = (backend.entry.pk, backend.display, url_base)
    return _rendered(
        _config_answers,
        key,
        backend,
        lambda: (orjson.dumps(served_config(backend, url_base)), None),
    )


def _rendered(
    cache: TTLCache[tuple[BackendConfigIn, bytes]],
    key: Hashable,
    backend: Backend,
    render: Callable[[], tuple[bytes, float | None]],
) -> bytes:
    """An answer rendered from `backend.config`, kept with that config: made again once the
    config was read again since, or when the seconds `render` gave with it have passed."""
    held = cache.held(key)
    if held is not None and held[1][0] is backend.config:
        return held[1][1]
    body, lasts = render()
    until = None if lasts is None else time.monotonic() + lasts
    cache.put(key, (backend.config, body), until=until)
    return body


def backend_status(backend: Backend, timeout_seconds: float) -> dict:
    """BackendStatusSchemaOut: operational while a spooler looked at its queue recently."""
    return _status_and_turn(backend, timeout_seconds)[0]


def _status_and_turn(backend: Backend, timeout_seconds: float) -> tuple[dict, float | None]:
    """backend_status, and in how many seconds `operational` turns false (None: it will not
    before the config is read again)."""
    c = backend.config
    checked = c.last_queue_check
    operational, turns = False, None
    if checked is not None:
        if checked.tzinfo is None:
            checked = checked.replace(tzinfo=UTC)  # Mongo hands back naive UTC
        age = (datetime.now(UTC) - checked).total_seconds()
        operational = age <= timeout_seconds
        if operational:
            turns = timeout_seconds - age
    status = {
        "backend_name": backend.full_name,
        "backend_version": c.version,
        "operational": operational,
        "pending_jobs": c.pending_jobs or 0,
        "status_msg": c.status_msg or "",
    }
    return status, turns


def backend_status_json(backend: Backend, timeout_seconds: float) -> bytes:
    """backend_status as JSON, rendered again only when the config is read again or when
    `operational` turns (a poll of it is then a dict lookup)."""

    def render() -> tuple[bytes, float | None]:
        status, turns = _status_and_turn(backend, timeout_seconds)
        return orjson.dumps(status), turns

    return _rendered(
        _status_answers, (backend.entry.pk, backend.display, timeout_seconds), backend, render
    )


def list_backends_json(url_base: str) -> bytes:
    """Served configs of every backend of every active provider, `dummy` ones left out, as
    JSON (rendered once per CACHE_SECONDS: a poll of it is then a dict lookup)."""
    return _listing.get(url_base, lambda: orjson.dumps(_collect_backends(url_base)))


def _collect_backends(url_base: str) -> list[dict]:
    served: list[dict] = []
    for entry in active_entries():
        try:
            provider = provider_for(entry)
            displays = sorted(provider.list_backends())
        except (StorageError, StorageUnavailable) as exc:
            log.warning("skipping storage provider %s: %s", entry.name, exc)
            continue
        for display in displays:
            if "dummy" in display:
                continue
            try:
                config = stored_config(entry, provider, display)
            except (UnknownBackend, StorageUnavailable):
                continue
            served.append(served_config(Backend(entry, provider, display, config), url_base))
    return served


def _owns(caller: Caller, backend: Backend, job_id: str) -> bool:
    """Whether the ledger says `caller` posted `job_id` to this backend."""
    key = (backend.entry.pk, backend.display, job_id, caller.user_id)
    return _ledger.get(
        key,
        lambda: Job.objects.filter(
            job_id=job_id,
            storage_provider_id=backend.entry.pk,
            display_name=backend.display,
            owner_id=caller.user_id,
        ).exists(),
    )


def _stored_status(caller: Caller, backend: Backend, job_id: str) -> dict:
    """The status document of one of the caller's jobs, normalised to a StatusMsgDict."""
    if not backend.provider.is_job_id(job_id):
        raise JobNotFound()
    if not _owns(caller, backend, job_id):
        raise JobNotFound(job_id=job_id)
    key = (backend.entry, backend.display, job_id)
    return _final_statuses.get(key, lambda: _read_status(backend, job_id, caller), _is_final)


def _read_status(backend: Backend, job_id: str, caller: Caller) -> dict:
    try:
        doc = backend.provider.get_status(backend.display, job_id, username=caller.username)
    except NotFound:
        raise JobNotFound(job_id=job_id) from None
    except StorageError:
        raise StorageUnavailable() from None
    return status_msg(
        str(doc.get("job_id", job_id)),
        str(doc.get("status", "")),
        str(doc.get("detail", "")),
        str(doc.get("error_message", "None")),
    )


def _is_final(status: dict) -> bool:
    """DONE and ERROR never change again: a poll of a finished job may skip storage."""
    return status["status"] in FINAL


def job_status(caller: Caller, backend: Backend, job_id: str) -> dict:
    """get_job_status: the stored status; a job in ERROR answers 406 with it."""
    status = _stored_status(caller, backend, job_id)
    if status["status"] == "ERROR":
        raise JobFailed(status)
    return status


def job_result(caller: Caller, backend: Backend, job_id: str) -> dict:
    """get_job_result: the result of a DONE job, else its status (try again later)."""
    status = job_status(caller, backend, job_id)
    if status["status"] != "DONE":
        return status
    try:
        result = _results.get(
            (backend.entry, backend.display, job_id),
            lambda: backend.provider.get_result(backend.display, job_id, username=caller.username),
        )
    except NotFound:
        return {**status, "detail": NOT_YET}
    except StorageError:
        raise StorageUnavailable() from None
    return {
        **result,
        "backend_name": backend.full_name,
        "qobj_id": result.get("qobj_id"),
        "status": "DONE",
    }


def with_counts(result: dict) -> dict:
    """`result` with `data.counts` in every experiment (qiskit's get_counts needs it)."""
    experiments = []
    for experiment in result.get("results") or []:
        if not isinstance(experiment, dict):
            experiments.append(experiment)
            continue
        data = dict(experiment.get("data") or {})
        if "counts" not in data:
            data["counts"] = dict(Counter(data.get("memory") or []))
        experiments.append({**experiment, "data": data})
    return {**result, "results": experiments}


# ---- the jobs API: a caller's jobs from the ledger ------------------------------------------

# At most this many open rows are brought up to date per list request (newest first).
REFRESH_LIMIT = 1000


@dataclass(frozen=True)
class JobFilters:
    """What `GET jobs` asks for, checked before the caller is (SPEC §4: 422 before 401)."""

    limit: int = 20
    after: tuple[datetime, int] | None = None  # the cursor: the last row of the page before
    status: str | None = None
    backend: tuple[str, str, str | None] | None = None  # provider, display, suffix
    submitted_after: datetime | None = None
    submitted_before: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        limit: int,
        cursor: str | None,
        status: str | None,
        backend: str | None,
        submitted_after: datetime | None,
        submitted_before: datetime | None,
    ) -> JobFilters:
        named = None
        if backend is not None:
            try:
                named = split_name(backend, settings.DEFAULT_STORAGE)
            except UnknownBackend:
                raise InvalidParameter("backend") from None
        return cls(
            limit=limit,
            after=decode_cursor(cursor) if cursor is not None else None,
            status=status,
            backend=named,
            submitted_after=_aware(submitted_after),
            submitted_before=_aware(submitted_before),
        )


def _aware(moment: datetime | None) -> datetime | None:
    """A time the caller gave without a zone is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def encode_cursor(row: Job) -> str:
    """An opaque pointer just past `row` in the newest-first order."""
    data = orjson.dumps([row.submitted_at.isoformat(), row.pk])
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, pk = orjson.loads(raw)
        parsed = datetime.fromisoformat(moment)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidParameter("cursor") from None
    if not isinstance(pk, int) or isinstance(pk, bool) or parsed.tzinfo is None:
        raise InvalidParameter("cursor")
    return parsed, pk


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def backend_name_of(row: Job) -> str:
    """The full name the job was posted to; rows from before it was recorded ask the config."""
    if row.backend_name:
        return row.backend_name
    provider_name = row.storage_provider.name
    try:
        entry, provider = provider_named(provider_name)
        config = stored_config(entry, provider, row.display_name)
    except (UnknownBackend, StorageUnavailable):
        return f"{provider_name}_{row.display_name}"  # no config to tell its kind
    row.backend_name = Backend(entry, provider, row.display_name, config).full_name
    Job.objects.filter(pk=row.pk).update(backend_name=row.backend_name)
    return row.backend_name


def job_record(row: Job) -> dict:
    """One job as the jobs API shows it."""
    return {
        "job_id": row.job_id,
        "backend_name": backend_name_of(row),
        "status": row.status,
        "submitted_at": _iso(row.submitted_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "shots": row.shots,
        "experiments": row.experiments,
        "cancel_requested": row.cancel_requested_at is not None,
    }


def _callers_jobs(caller: Caller, filters: JobFilters) -> QuerySet[Job]:
    rows = Job.objects.filter(owner_id=caller.user_id).select_related("storage_provider")
    if filters.backend is not None:
        provider_name, display, suffix = filters.backend
        rows = rows.filter(storage_provider__name=provider_name, display_name=display)
        if suffix is not None:
            full = f"{provider_name}_{display}_{suffix}"
            rows = rows.filter(Q(backend_name=full) | Q(backend_name=""))
    if filters.submitted_after is not None:
        rows = rows.filter(submitted_at__gt=filters.submitted_after)
    if filters.submitted_before is not None:
        rows = rows.filter(submitted_at__lt=filters.submitted_before)
    return rows.order_by("-submitted_at", "-pk")


def list_jobs(*, caller: Caller, filters: JobFilters) -> dict:
    """`GET jobs`: the caller's jobs, newest first, a page at a time."""
    rows = _callers_jobs(caller, filters)
    ledger.refresh(rows.filter(status__in=OPEN_STATUSES)[:REFRESH_LIMIT])
    if filters.status is not None:
        rows = rows.filter(status=filters.status)
    if filters.after is not None:
        moment, pk = filters.after
        rows = rows.filter(Q(submitted_at__lt=moment) | Q(submitted_at=moment, pk__lt=pk))
    page = list(rows[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    return {
        "jobs": [job_record(row) for row in page],
        "next_cursor": encode_cursor(page[-1]) if more else None,
    }


def is_any_job_id(job_id: str) -> bool:
    """Whether `job_id` has the form of some medium's job ids."""
    return bool(OBJECT_ID_RE.fullmatch(job_id) or DROPBOX_JOB_ID_RE.fullmatch(job_id))


def callers_job(caller: Caller, job_id: str) -> Job:
    """The caller's ledger row of `job_id`; JobNotFound (406) as on v2 otherwise."""
    if not is_any_job_id(job_id):
        raise JobNotFound()
    row = (
        Job.objects.filter(owner_id=caller.user_id, job_id=job_id)
        .select_related("storage_provider")
        .order_by("-submitted_at")
        .first()
    )
    if row is None:
        raise JobNotFound(job_id=job_id)
    return row


def one_job(*, caller: Caller, job_id: str) -> dict:
    """`GET jobs/{job_id}`: the record, and while queued its place in the queue."""
    row = callers_job(caller, job_id)
    ledger.refresh([row])
    return {**job_record(row), "queue_position": queue_position(row)}


def queue_position(row: Job) -> int | None:
    """1 for the job its backend's spooler takes next; None unless queued (or unknown)."""
    if row.status != JobStatus.QUEUED:
        return None
    try:
        entry, provider = provider_named(row.storage_provider.name)
        return provider.queue_position(row.display_name, row.job_id, max_age=settings.CACHE_SECONDS)
    except (UnknownBackend, StorageUnavailable, StorageError):
        return None
