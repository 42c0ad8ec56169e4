"""Pydantic shapes of the documents that travel through storage (SPEC §3, §7).

Shared by the API and by spoolers, so both agree on what a status, a config, a
job and a lease look like.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

Document = dict[str, Any]  # a JSON object as stored
WireOrder = Literal["sequential", "interleaved"]
ColdAtomType = Literal["fermion", "boson", "spin", "mixed"]


def status_msg(job_id: str, status: str, detail: str, error_message: str = "None") -> Document:
    """A StatusMsgDict as a plain dict, the form it is stored and served in."""
    return {"job_id": job_id, "status": status, "detail": detail, "error_message": error_message}


def initial_status(job_id: str) -> Document:
    """The status post_job writes before it queues the job."""
    return status_msg(job_id, "INITIALIZING", "Got your json.")


class GateConfig(BaseModel):
    """One gate of a backend config, as qiskit's BackendConfiguration accepts it."""

    model_config = ConfigDict(extra="allow")

    name: str
    parameters: list[str]
    qasm_def: str
    coupling_map: list[list[int]]
    description: str


class BackendConfigIn(BaseModel):
    """BackendConfigSchemaIn: a backend config as spoolers store it."""

    model_config = ConfigDict(extra="allow")

    description: str
    version: str
    display_name: str = Field(pattern=r"^[a-z0-9]+$")
    cold_atom_type: ColdAtomType
    gates: list[GateConfig]
    max_experiments: int
    max_shots: int
    simulator: bool
    supported_instructions: list[str]
    num_wires: int
    wire_order: WireOrder
    num_species: int
    pending_jobs: int | None = None
    status_msg: str | None = None
    last_queue_check: datetime | None = None
    sign: bool = False
    kid: str | None = None


class ExperimentIn(BaseModel):
    """One experiment of a posted job; instructions are the spooler's to check."""

    model_config = ConfigDict(extra="allow")

    instructions: list[list[Any]]
    num_wires: StrictInt
    shots: StrictInt
    wire_order: WireOrder | None = None
    seed: StrictInt | None = None


class JobShapeError(ValueError):
    """A posted job is not an object of experiments of the shape of SPEC §3."""


def check_job(job: Any, default_wire_order: str) -> Document:
    """Validate a posted job and fill in `wire_order` where it is missing.

    Existing spoolers fail on an experiment without `wire_order`, so the backend's
    own order is stored in its place.
    """
    if not isinstance(job, dict) or not job:
        raise JobShapeError("The job must be a non-empty JSON object of experiments.")
    checked: dict[str, Any] = {}
    for name, experiment in job.items():
        if not EXPERIMENT_NAME_RE.fullmatch(name) or name == "_id":
            raise JobShapeError(
                "Invalid job: experiment names are 1-64 characters of letters, digits, "
                "'_' and '-' (not '_id')."
            )
        problem = _storable(experiment)
        if problem:
            raise JobShapeError(f"Invalid job: {name} holds {problem}.")
        try:
            ExperimentIn.model_validate(experiment)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = first["loc"][0] if first["loc"] else None
            where = f"key '{key}'" if key is not None else "shape"
            raise JobShapeError(f"Invalid job: {name} has an invalid {where}.") from None
        checked[name] = dict(experiment)
        if checked[name].get("wire_order") is None:
            checked[name]["wire_order"] = default_wire_order
    return checked


EXPERIMENT_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
INT64 = range(-(2**63), 2**63)


def _storable(value: Any) -> str:
    """What keeps `value` from being stored exactly on every medium, or "" when nothing does.

    Walks without recursion, so that deep nesting costs no stack.
    """
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if item not in INT64:
                return "an integer that does not fit in 64 bits"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "a number that is not finite"
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string that is not valid Unicode"
    return ""


class Lease(BaseModel):
    """Who runs a job since when (SPEC §7); `owner` None marks a job handed back.

    `lease_seconds` is the holder's own lease length, so that a reaper with a
    shorter lease never takes a job from a living spooler with a longer one.
    """

    display_name: str
    claimed_at: datetime | None
    owner: str | None
    attempts: int = 0
    renewed_at: datetime | None = None
    lease_seconds: float | None = None

    def expires(self, default_seconds: float) -> datetime | None:
        """When the lease runs out, or None when nobody holds it."""
        last = self.renewed_at or self.claimed_at
        if last is None:
            return None
        seconds = self.lease_seconds or default_seconds
        return datetime.fromtimestamp(last.timestamp() + seconds, UTC)


class Ending(BaseModel):
    """Who ends a job (improvement): its owner cancelling it, or the spooler that ran it.

    Created, never overwritten by a rival, so exactly one of the two wins; the
    spooler's record also keeps when the job started and ended, for the API.
    """

    by: Literal["owner", "spooler"]
    requested_at: datetime | None = None
    owner: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def cancels(self) -> bool:
        return self.by == "owner"


def utcnow() -> datetime:
    """Aware UTC now: every timestamp we store is UTC (SPEC §3)."""
    return datetime.now(UTC)
