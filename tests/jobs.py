"""Helpers of the jobs-API suites (issue 14): a client for alice's jobs and a spooler's moves."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model

from backends.auth import issue_token
from storage_providers import Place, Ref, StorageProvider
from storage_providers.schemas import status_msg

V2 = "/api/v2"
BACKEND = "alqor_fermions_simulator"
NO_STATUS = "Could not find the status file."
BAD_TOKEN = "Invalid credentials!"
CANCELLED = "Job cancelled by its owner."
EXPERIMENT = {
    "instructions": [["load", [0], []], ["fhop", [0, 1, 2, 3], [1.5]], ["measure", [0], []]],
    "num_wires": 8,
    "shots": 3,
    "wire_order": "interleaved",
}
JOB = {"experiment_0": EXPERIMENT}
RESULT = {"job_id": "x", "status": "INITIALIZING", "results": [], "success": True, "header": {}}


def error(detail: str, job_id: str = "None") -> dict:
    return {"job_id": job_id, "status": "ERROR", "detail": detail, "error_message": detail}


def missing(name: str) -> dict:
    return error(f"Missing or invalid parameter: {name}.")


def answer(response: Any) -> tuple[int, Any]:
    assert response["Content-Type"].startswith("application/json")
    return response.status_code, response.json()


def token_of(username: str) -> str:
    """A token of a new user."""
    user = get_user_model().objects.create_user(username, password=None)
    return issue_token(user)[1]


class JobsApi:
    """post_job, the jobs list, one job and cancel_job, as alice unless told otherwise."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token = client, token

    def post(self, job: Any = JOB, *, backend: str = BACKEND, token: str | None = None, key=None):  # type: ignore[no-untyped-def]
        body = {
            "job": job if isinstance(job, str) else json.dumps(job),
            "token": token or self.token,
        }
        headers = {"Idempotency-Key": key} if key is not None else {}
        return self.client.post(
            f"{V2}/{backend}/post_job", body, content_type="application/json", headers=headers
        )

    def post_id(self, job: Any = JOB, **kwargs: Any) -> str:
        response = self.post(job, **kwargs)
        assert response.status_code == 200, response.content
        return str(response.json()["job_id"])

    def jobs(self, headers: dict | None = None, **query: Any):  # type: ignore[no-untyped-def]
        query.setdefault("token", self.token)
        query = {k: v for k, v in query.items() if v is not None}
        return self.client.get(f"{V2}/jobs", query, headers=headers or {})

    def listed(self, **query: Any) -> list[dict]:
        response = self.jobs(**query)
        assert response.status_code == 200, response.content
        return list(response.json()["jobs"])

    def job(self, job_id: str, token: str | None = None):  # type: ignore[no-untyped-def]
        return self.client.get(f"{V2}/jobs/{job_id}", {"token": token or self.token})

    def cancel(self, job_id: Any, *, backend: str = BACKEND, token: str | None = None, **body: Any):  # type: ignore[no-untyped-def]
        body = {"job_id": job_id, "token": token or self.token, **body}
        body = {k: v for k, v in body.items() if v is not None}
        return self.client.post(f"{V2}/{backend}/cancel_job", body, content_type="application/json")

    def status(self, job_id: str, backend: str = BACKEND):  # type: ignore[no-untyped-def]
        query = {"job_id": job_id, "token": self.token}
        return self.client.get(f"{V2}/{backend}/get_job_status", query)


def run_to_done(storage: StorageProvider, display: str = "fermions") -> str:
    """What the built-in spooler does with the oldest job: settle, then write its result."""
    claim = storage.claim_next(display, owner="test-spooler")
    assert claim is not None
    assert storage.conclude(claim, {**RESULT, "job_id": claim.job_id}, "Done.") == "DONE"
    return claim.job_id


def run_to_error(storage: StorageProvider, reason: str, display: str = "fermions") -> str:
    claim = storage.claim_next(display, owner="test-spooler")
    assert claim is not None
    assert storage.conclude(claim, None, reason) == "ERROR"
    return claim.job_id


def finish_as_sqooler(storage: StorageProvider, job_id: str, display: str = "fermions") -> None:
    """End a running job as sqooler 0.9.0 does: no lease, no ending record (SPEC §7.3)."""
    user = storage.job_user_folder(job_id)
    storage.write(Ref(Place.RESULTS, job_id, display, user), {**RESULT, "job_id": job_id})
    storage.move(Ref(Place.RUNNING, job_id), Ref(Place.FINISHED, job_id, display, user))
    storage.write(Ref(Place.STATUS, job_id, display, user), status_msg(job_id, "DONE", "Done."))
