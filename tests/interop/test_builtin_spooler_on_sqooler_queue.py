"""The other way round: our built-in spooler runs a queue that sqooler 0.9.0 wrote (SPEC §6, §7).

sqooler creates the jobs the way the replaced service did (its `upload_job`, with its
own ids, and its initial status), on a local folder, on MongoDB and on Dropbox; our
spooler (`build_spooler`, as `python -m spooler` builds it, driven by `step()`) runs
them, and sqooler's own provider must read back the statuses, the results (and verify
them when we sign) and the config we announced. On Dropbox that means its user
folders: the result under the id's user segment, every status under `None`.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spooler.cli import build_spooler
from spooler.simulators import BACKENDS
from storage_providers import LocalProvider, Place, StorageProvider, build_provider
from tests.conftest import TEST_OPTIONS, mongodb_provider
from tests.interop import SqoolerSide, dropbox_side, mongodb_side

pytestmark = pytest.mark.interop

DISPLAY = "singlequdit"
FULL_NAME = f"alqor_{DISPLAY}_simulator"
REFUSED = "experiment_0, instruction 0 (load): N = 1000000000 is above the limit 500"
# sqooler's ids: `uuid4().hex[:24]` on a folder and on MongoDB; on Dropbox
# `{UTC %Y%m%d_%H%M%S}-{display}-{username}-{5 hex}` (SPEC §6)
SQOOLER_IDS = {
    "local": "[0-9a-f]{24}",
    "mongodb": "[0-9a-f]{24}",
    "dropbox": rf"\d{{8}}_\d{{6}}-{DISPLAY}-alice-[0-9a-f]{{5}}",
}

FLIP_ALL = {
    "experiment_0": {
        "instructions": [["load", [0], [5]], ["rlx", [0], [math.pi]], ["measure", [0], []]],
        "num_wires": 1,
        "shots": 3,
        "wire_order": "sequential",
    },
    "experiment_1": {
        "instructions": [["load", [0], [7]], ["measure", [0], []]],
        "num_wires": 1,
        "shots": 2,
        "wire_order": "sequential",
    },
}
TOO_MANY_ATOMS = {
    "experiment_0": {
        "instructions": [["load", [0], [1_000_000_000]], ["measure", [0], []]],
        "num_wires": 1,
        "shots": 1,
        "wire_order": "sequential",
    }
}
NOT_MEASURED = {
    "experiment_0": {
        "instructions": [["load", [0], [2]]],
        "num_wires": 1,
        "shots": 2,
        "wire_order": "sequential",
    }
}

JOBS = [FLIP_ALL, TOO_MANY_ATOMS, NOT_MEASURED]
# per index into JOBS of a job that ends DONE: (experiment, job, memory) of each experiment
RESULTS: dict[int, list[tuple[str, dict[str, Any], list[str]]]] = {
    0: [("experiment_0", FLIP_ALL, ["5", "5", "5"]), ("experiment_1", FLIP_ALL, ["0", "0"])],
    2: [("experiment_0", NOT_MEASURED, ["", ""])],
}


def experiment(name: str, job: dict[str, Any], memory: list[str]) -> dict[str, Any]:
    """One experiment's result as sqooler's `ResultDict` hands it back."""
    instructions = job[name]["instructions"]
    return {
        "header": {"name": name},
        "shots": job[name]["shots"],
        "success": True,
        "data": {
            "memory": memory,
            "instructions": [
                {"name": n, "wires": w, "params": [float(p) for p in ps]}
                for n, w, ps in instructions
            ],
        },
    }


@pytest.fixture(params=["local", "mongodb", "dropbox"])
def medium(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shared(
    medium: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[StorageProvider, dict[str, Any]]]:
    """Our provider object, and how sqooler_side reaches the same storage."""
    provider: StorageProvider
    if medium == "local":
        provider = LocalProvider("alqor", tmp_path / "storage")
        side = {"base_path": str(tmp_path / "storage"), "provider": "alqor"}
    elif medium == "mongodb":
        server = request.getfixturevalue("mongo")
        provider = mongodb_provider(server)
        side = mongodb_side(server)
    else:
        box = request.getfixturevalue("box")
        provider = build_provider("dropbox", "alqor", box.login(), TEST_OPTIONS)
        side = dropbox_side(box)
    yield provider, side
    provider.close()


Ran = tuple[list[str], dict[str, Any], dict[str, Any] | None]


@pytest.fixture
def run_sqooler_queue(
    medium: str,
    shared: tuple[StorageProvider, dict[str, Any]],
    sqooler: SqoolerSide,
    sqooler_key: dict[str, Any],
    tmp_path: Path,
) -> Callable[[bool], Ran]:
    """sqooler queues JOBS, our spooler runs them dry, sqooler reads everything back.

    Answers sqooler's job ids (in the order of JOBS), what it read, and the public key
    our spooler published.
    """
    provider, side = shared

    def run(signed: bool) -> Ran:
        key_file = None
        if signed:  # a lab keeps the key its sqooler spoolers used: sqooler's PRIVATE_JWK_STR
            key_file = tmp_path / "lab.key"
            key_file.write_text(sqooler_key["config_str"])
        options = argparse.Namespace(backends=DISPLAY, lease_seconds=600.0, private_jwk=key_file)
        spooler, public = build_spooler(provider, options)
        spooler.options.stamp_every = 0.0  # every look stamps: the last one saw the empty queue
        spooler.announce(public)
        queued = sqooler("queue_jobs", **side, display_name=DISPLAY, username="alice", jobs=JOBS)
        job_ids = [entry["job_id"] for entry in queued]
        for job_id, entry in zip(job_ids, queued, strict=True):
            assert re.fullmatch(SQOOLER_IDS[medium], job_id)
            assert provider.is_job_id(job_id)
            assert entry["status"] == {
                "job_id": job_id,
                "status": "INITIALIZING",
                "detail": "Got your json.",
                "error_message": "None",
            }
        assert sorted(provider.list_ids(Place.QUEUED, DISPLAY)) == sorted(job_ids)
        ran = 0
        while spooler.step():
            ran += 1
        assert ran == len(JOBS)
        back = sqooler("read_back", **side, display_name=DISPLAY, job_ids=job_ids, verify=signed)
        return job_ids, back, public

    return run


@pytest.mark.parametrize("signed", [False, True], ids=["plain", "signed"])
def test_builtin_spooler_runs_a_queue_sqooler_wrote(
    medium: str,
    shared: tuple[StorageProvider, dict[str, Any]],
    run_sqooler_queue: Callable[[bool], Ran],
    sqooler_key: dict[str, Any],
    signed: bool,
    request: pytest.FixtureRequest,
) -> None:
    provider = shared[0]
    job_ids, back, public = run_sqooler_queue(signed)
    done_id, refused_id, unmeasured_id = job_ids

    assert provider.list_ids(Place.QUEUED, DISPLAY) == []
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.LEASES) == []
    assert sorted(provider.list_ids(Place.FINISHED, DISPLAY)) == sorted([done_id, unmeasured_id])
    assert provider.list_ids(Place.DELETED) == [refused_id]
    assert sorted(provider.list_ids(Place.STATUS, DISPLAY)) == sorted(job_ids)  # one each
    for index, results in RESULTS.items():
        ours = provider.get_result(DISPLAY, job_ids[index])
        assert [r["data"]["memory"] for r in ours["results"]] == [r[2] for r in results]
    assert public == (sqooler_key["public"] if signed else None)
    if medium == "dropbox":  # the files themselves, where sqooler's paths put them
        files = request.getfixturevalue("box").paths()
        assert [p for p in files if p.startswith("/Backend_files/Status/")] == sorted(
            f"/Backend_files/Status/{DISPLAY}/None/status-{job_id}.json" for job_id in job_ids
        )
        assert [p for p in files if p.startswith("/Backend_files/Result/")] == sorted(
            f"/Backend_files/Result/{DISPLAY}/alice/result-{job_ids[index]}.json"
            for index in RESULTS
        )

    # what sqooler's own provider reads of it
    assert back["backends"] == [DISPLAY]
    config = back["config"]
    assert (config["backend_name"], config["display_name"]) == (FULL_NAME, DISPLAY)
    assert config["supported_instructions"] == BACKENDS[DISPLAY].supported_instructions()
    assert back["backend_status"] == {
        "backend_name": FULL_NAME,
        "backend_version": "1.0.0",
        "operational": True,
        "pending_jobs": 0,
        "status_msg": "",
    }
    seen = back["jobs"]
    for job_id in (done_id, unmeasured_id):
        assert seen[job_id]["status"] == {
            "job_id": job_id,
            "status": "DONE",
            "detail": "Done.",
            "error_message": "None",
        }
        assert seen[job_id]["verified"] is (True if signed else None)
    assert seen[refused_id]["status"] == {
        "job_id": refused_id,
        "status": "ERROR",
        "detail": REFUSED,
        "error_message": REFUSED,
    }
    assert seen[refused_id]["result"]["status"] == "ERROR"  # sqooler's answer when there is none


def test_sqooler_reads_the_results_our_spooler_writes(
    run_sqooler_queue: Callable[[bool], Ran],
) -> None:
    job_ids, back, _ = run_sqooler_queue(False)
    for index, results in RESULTS.items():
        job_id = job_ids[index]
        assert back["jobs"][job_id]["result"] == {
            "backend_name": FULL_NAME,
            "display_name": DISPLAY,
            "backend_version": "1.0.0",
            "job_id": job_id,
            "qobj_id": None,
            "success": True,
            "status": "DONE",
            "header": {},
            "results": [experiment(*result) for result in results],
        }
