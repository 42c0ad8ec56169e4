"""Reads of the API: backends, their configs and status, and a caller's jobs."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from storage_providers import InvalidName, NotFound, StorageError, StorageProvider
from storage_providers.names import is_name
from storage_providers.schemas import BackendConfigIn, status_msg

from .auth import Caller
from .cache import TTLCache
from .errors import JobFailed, JobNotFound, StorageUnavailable, UnknownBackend
from .models import Job
from .providers import ProviderEntry, active_entries, provider_for, provider_named

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
_listing: TTLCache[list[dict]] = TTLCache()
_ledger: TTLCache[bool] = TTLCache()


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
    """The backend named in a URL, or UnknownBackend (404) before storage is touched."""
    provider_name, display, suffix = split_name(name, default_storage)
    entry, provider = provider_named(provider_name)
    config = stored_config(entry, provider, display)
    backend = Backend(entry, provider, display, config)
    if suffix is not None and suffix != SUFFIXES[config.simulator]:
        raise UnknownBackend()
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


def backend_status(backend: Backend, timeout_seconds: float) -> dict:
    """BackendStatusSchemaOut: operational while a spooler looked at its queue recently."""
    c = backend.config
    checked = c.last_queue_check
    operational = False
    if checked is not None:
        if checked.tzinfo is None:
            checked = checked.replace(tzinfo=UTC)  # Mongo hands back naive UTC
        age = (datetime.now(UTC) - checked).total_seconds()
        operational = age <= timeout_seconds
    return {
        "backend_name": backend.full_name,
        "backend_version": c.version,
        "operational": operational,
        "pending_jobs": c.pending_jobs or 0,
        "status_msg": c.status_msg or "",
    }


def list_backends(url_base: str) -> list[dict]:
    """Served configs of every backend of every active provider, `dummy` ones left out."""
    return _listing.get(url_base, lambda: _collect_backends(url_base))


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
        result = backend.provider.get_result(backend.display, job_id, username=caller.username)
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
