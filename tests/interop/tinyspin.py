"""The tiny backend `sqooler_side.py` serves, and what our API must make of it (SPEC §3, §4)."""

from __future__ import annotations

import json
import math
from typing import Any

from django.test import Client

DISPLAY = "tinyspin"
FULL_NAME = f"alqor_{DISPLAY}_simulator"
API = f"/api/v2/{FULL_NAME}"
KID = "tinyspin-key"

GOOD_JOB = {
    # no wire_order: post_job fills in the backend's, sqooler's schema needs it
    "experiment_0": {
        "instructions": [["load", [0], [5]], ["rlx", [0], [math.pi]], ["measure", [0], []]],
        "num_wires": 1,
        "shots": 3,
    },
    "experiment_1": {
        "instructions": [["load", [0], [7]], ["measure", [0], []]],
        "num_wires": 1,
        "shots": 2,
        "wire_order": "sequential",
        "seed": 11,
    },
}
GOOD_RESULTS = [
    {
        "header": {"name": "experiment_0", "extra metadata": "text"},
        "shots": 3,
        "success": True,
        "data": {
            "memory": ["5", "5", "5"],
            "instructions": [
                {"name": "load", "wires": [0], "params": [5.0]},
                {"name": "rlx", "wires": [0], "params": [math.pi]},
                {"name": "measure", "wires": [0], "params": []},
            ],
        },
    },
    {
        "header": {"name": "experiment_1", "extra metadata": "text"},
        "shots": 2,
        "success": True,
        "data": {
            "memory": ["0", "0"],
            "instructions": [
                {"name": "load", "wires": [0], "params": [7.0]},
                {"name": "measure", "wires": [0], "params": []},
            ],
        },
    },
]
SERVED_CONFIG = {
    "description": "One wire of spins, for the interoperability tests.",
    "display_name": DISPLAY,
    "backend_version": "0.0.1",
    "n_qubits": 1,
    "backend_name": FULL_NAME,
    "basis_gates": ["rlx"],
    "max_experiments": 5,
    "max_shots": 100,
    "simulator": True,
    "gates": [
        {
            "name": "rlx",
            "parameters": ["omega"],
            "qasm_def": "{}",
            "coupling_map": [[0]],
            "description": "Evolution under Lx",
        }
    ],
    "supported_instructions": ["load", "rlx", "measure"],
    "cold_atom_type": "spin",
    "wire_order": "sequential",
    "num_species": 1,
    "url": f"http://testserver{API}/",
    "conditional": False,
    "local": False,
    "open_pulse": False,
    "memory": True,
    "coupling_map": "linear",
    "dynamic_reprate_enabled": False,
}


def post_job(client: Client, token: str, job: dict[str, Any]) -> str:
    body = {"job": json.dumps(job), "token": token, "username": "ignored"}
    response = client.post(f"{API}/post_job", json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    status = response.json()
    assert status == {
        "job_id": status["job_id"],
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }
    return str(status["job_id"])


def ask(client: Client, endpoint: str, job_id: str, token: str) -> tuple[int, Any]:
    response = client.get(f"{API}/{endpoint}", {"job_id": job_id, "token": token})
    return response.status_code, response.json()
