"""The service and its spooler together, as a user meets them (SPEC §4, §7, §9).

A live Django server answers HTTP; `python -m spooler` runs in a subprocess on the
provider's folder. The test is the user: it posts jobs with `requests`, polls their
status (bounded) and reads the results.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.test_spooler_cli import SpoolerProcess

pytestmark = pytest.mark.django_db(transaction=True)

HTTP_TIMEOUT = 10
ALL_IN_MODE_2 = "0 0 1 0 0 0 0 0"


@dataclass
class Lab:
    """The running service and spooler, seen from the user's side."""

    url: str
    token: str
    spooler: SpoolerProcess

    def post(self, backend: str, job: dict) -> requests.Response:
        body = {"job": json.dumps(job), "token": self.token}
        return requests.post(f"{self.url}/{backend}/post_job", json=body, timeout=HTTP_TIMEOUT)

    def get(self, backend: str, endpoint: str, **params: str) -> requests.Response:
        params["token"] = self.token
        return requests.get(f"{self.url}/{backend}/{endpoint}", params=params, timeout=HTTP_TIMEOUT)

    def wait_for_end(self, backend: str, job_id: str, timeout: float = 20) -> requests.Response:
        """Poll get_job_status until the job is DONE or ERROR."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.get(backend, "get_job_status", job_id=job_id)
            if answer.json()["status"] in ("DONE", "ERROR"):
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {answer.json()} after {timeout} s")
            time.sleep(0.05)


@pytest.fixture
def lab(live_server, local_provider, token, tmp_path) -> Iterator[Lab]:
    base = Path(local_provider.login["base_path"])
    spooler = SpoolerProcess.python_m(base, tmp_path / "spooler.log")
    try:
        spooler.wait_serving()
        yield Lab(f"{live_server.url}/api/v2", token, spooler)
    finally:
        exit_status = spooler.terminate()
    assert exit_status == 0, spooler.log()
    assert "Traceback" not in spooler.log()


def initial(job_id: str) -> dict:
    detail = "Got your json."
    return {"job_id": job_id, "status": "INITIALIZING", "detail": detail, "error_message": "None"}


def done(job_id: str) -> dict:
    return {"job_id": job_id, "status": "DONE", "detail": "Done.", "error_message": "None"}


def test_atoms_rotated_by_pi_are_all_flipped_in_every_shot(lab):
    backend = "alqor_singlequdit_simulator"
    instructions = [["load", [0], [10]], ["rlx", [0], [math.pi]], ["measure", [0], []]]
    job = {"experiment_0": {"instructions": instructions, "num_wires": 1, "shots": 25}}

    posted = lab.post(backend, job)
    job_id = posted.json()["job_id"]

    assert (posted.status_code, posted.json()) == (200, initial(job_id))
    status = lab.wait_for_end(backend, job_id)
    assert (status.status_code, status.json()) == (200, done(job_id))
    result = lab.get(backend, "get_job_result", job_id=job_id)
    assert result.status_code == 200
    assert result.json() == {
        "backend_name": backend,
        "display_name": "singlequdit",
        "backend_version": "1.0.0",
        "job_id": job_id,
        "qobj_id": None,
        "success": True,
        "status": "DONE",
        "header": {},
        "results": [
            {
                "header": {"name": "experiment_0"},
                "shots": 25,
                "success": True,
                "data": {
                    "memory": ["10"] * 25,
                    "counts": {"10": 25},
                    "instructions": [
                        {"name": n, "wires": w, "params": p} for n, w, p in instructions
                    ],
                },
            }
        ],
    }
    backend_status = lab.get(backend, "get_backend_status").json()
    assert (backend_status["operational"], backend_status["pending_jobs"]) == (True, 0)


def test_a_fermion_hopping_two_tweezers_lands_in_mode_2_with_certainty(lab):
    backend = "alqor_fermions_simulator"
    instructions = [["load", [0], []], ["fhop", [0, 1, 2, 3], [math.pi / 2]]]
    instructions += [["measure", [wire], []] for wire in range(8)]
    job = {
        "experiment_0": {
            "instructions": instructions,
            "num_wires": 8,
            "shots": 40,
            "wire_order": "interleaved",
        }
    }

    job_id = lab.post(backend, job).json()["job_id"]

    assert lab.wait_for_end(backend, job_id).json() == done(job_id)
    (experiment,) = lab.get(backend, "get_job_result", job_id=job_id).json()["results"]
    assert experiment["data"]["memory"] == [ALL_IN_MODE_2] * 40
    assert experiment["data"]["counts"] == {ALL_IN_MODE_2: 40}


def test_a_job_the_spooler_refuses_answers_406_with_a_readable_reason(lab):
    backend = "alqor_singlequdit_simulator"
    job = {
        "experiment_0": {
            "instructions": [["load", [0], [1_000_000_000]], ["measure", [0], []]],
            "num_wires": 1,
            "shots": 5,
        }
    }

    job_id = lab.post(backend, job).json()["job_id"]

    reason = "experiment_0, instruction 0 (load): N = 1000000000 is above the limit 500"
    error = {"job_id": job_id, "status": "ERROR", "detail": reason, "error_message": reason}
    status = lab.wait_for_end(backend, job_id)
    assert (status.status_code, status.json()) == (406, error)
    result = lab.get(backend, "get_job_result", job_id=job_id)
    assert (result.status_code, result.json()) == (406, error)


def test_a_job_of_the_wrong_shape_is_refused_at_once_with_406(lab):
    job = {"experiment_0": {"instructions": [], "num_wires": 1, "shots": "many"}}

    posted = lab.post("alqor_singlequdit_simulator", job)

    reason = "Invalid job: experiment_0 has an invalid key 'shots'."
    error = {"job_id": "None", "status": "ERROR", "detail": reason, "error_message": reason}
    assert (posted.status_code, posted.json()) == (406, error)
