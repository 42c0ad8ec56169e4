"""Request and response shapes of the API, for validation and the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from ninja import Schema
from pydantic import ConfigDict

from storage_providers.schemas import GateConfig


class JobIn(Schema):
    """post_job's body; fields the client adds (such as `username`) are ignored."""

    model_config = ConfigDict(extra="ignore")

    job: str
    token: str | None = None


class StatusMsgOut(Schema):
    """StatusMsgDict: job status and every error answer."""

    job_id: str
    status: str
    detail: str
    error_message: str


class BackendConfigOut(Schema):
    """BackendConfigSchemaOut (SPEC §3)."""

    description: str
    display_name: str
    backend_version: str
    n_qubits: int
    backend_name: str
    basis_gates: list[str]
    max_experiments: int
    max_shots: int
    simulator: bool
    gates: list[GateConfig]
    supported_instructions: list[str]
    cold_atom_type: str
    wire_order: str
    num_species: int
    url: str | None
    conditional: bool
    local: bool
    open_pulse: bool
    memory: bool
    coupling_map: str
    dynamic_reprate_enabled: bool


class BackendStatusOut(Schema):
    """BackendStatusSchemaOut (SPEC §3), after qiskit's BackendStatus."""

    backend_name: str
    backend_version: str
    operational: bool
    pending_jobs: int
    status_msg: str


class ExperimentResultOut(Schema):
    model_config = ConfigDict(extra="allow")

    header: dict
    shots: int
    success: bool
    data: dict


class ResultOut(Schema):
    """ResultDict (SPEC §3), after qiskit's Result."""

    model_config = ConfigDict(extra="allow")

    backend_name: str
    display_name: str | None = None
    backend_version: str | None = None
    job_id: str
    qobj_id: str | None
    success: bool
    status: str
    header: dict
    results: list[ExperimentResultOut]


JobStatusName = Literal["INITIALIZING", "QUEUED", "RUNNING", "DONE", "ERROR", "CANCELLED"]


class CancelIn(Schema):
    """cancel_job's body; like post_job's, other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    token: str | None = None


class JobOut(Schema):
    """One of the caller's jobs, from the ledger (times ISO 8601 UTC, null when not known)."""

    job_id: str
    backend_name: str
    status: JobStatusName
    submitted_at: str
    started_at: str | None
    finished_at: str | None
    shots: int | None
    experiments: int | None
    cancel_requested: bool


class JobDetailOut(JobOut):
    """`jobs/{job_id}`: the record and, while queued, its place (1 = the next to run)."""

    queue_position: int | None


class JobListOut(Schema):
    """A page of the caller's jobs, newest first; `next_cursor` asks for the next page."""

    jobs: list[JobOut]
    next_cursor: str | None
