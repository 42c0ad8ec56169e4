"""The spooler's loop (SPEC §7, §9), driven one `step()` at a time on a local folder.

Each spooler gets a provider object of its own over the same folder, as separate
processes would; "killing" a spooler means claiming a job and never finishing it.
What the API makes of the folder is checked through Django's test client.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spooler.cli import build_spooler
from spooler.signing import generate_private_jwk, is_envelope, verify
from spooler.simulators import BACKENDS
from spooler.simulators.spins import SINGLE_QUDIT, SpinBackend, spin_gates
from spooler.worker import Spooler, SpoolerOptions
from storage_providers import LocalProvider, NotFound
from storage_providers.schemas import BackendConfigIn, utcnow

V2 = "/api/v2"
CRASHED = "The job crashed the spooler."
GATE_KEYS = {"name", "parameters", "qasm_def", "coupling_map", "description"}

SPIN_ONE_WIRE = [[0]]
SPIN_FOUR_WIRES = [[0], [1], [2], [3]]
NEIGHBOURS = [[0, 1], [1, 2], [2, 3]]
# Every run of consecutive tweezers (k up, k down = wires 2k, 2k+1), all their wires, sorted.
RUNS_OF_TWO_OR_MORE = [
    [0, 1, 2, 3],
    [0, 1, 2, 3, 4, 5],
    [0, 1, 2, 3, 4, 5, 6, 7],
    [2, 3, 4, 5],
    [2, 3, 4, 5, 6, 7],
    [4, 5, 6, 7],
]
RUNS_OF_ONE_OR_MORE = sorted([[0, 1], [2, 3], [4, 5], [6, 7], *RUNS_OF_TWO_OR_MORE])

# What SPEC §9 fixes for each backend: type, wires, species, order, and each gate's wires.
EXPECTED_BACKENDS = {
    "singlequdit": (
        "spin",
        1,
        1,
        "sequential",
        {"rlx": SPIN_ONE_WIRE, "rly": SPIN_ONE_WIRE, "rlz": SPIN_ONE_WIRE, "rlz2": SPIN_ONE_WIRE},
    ),
    "multiqudit": (
        "spin",
        4,
        1,
        "sequential",
        {
            "rlx": SPIN_FOUR_WIRES,
            "rly": SPIN_FOUR_WIRES,
            "rlz": SPIN_FOUR_WIRES,
            "rlz2": SPIN_FOUR_WIRES,
            "rlzlz": NEIGHBOURS,
            "rlxly": NEIGHBOURS,
        },
    ),
    "fermions": (
        "fermion",
        8,
        2,
        "interleaved",
        {"fhop": RUNS_OF_TWO_OR_MORE, "fint": RUNS_OF_ONE_OR_MORE, "fphase": RUNS_OF_ONE_OR_MORE},
    ),
}


def spin_job(atoms: int = 7, angle: float = math.pi, shots: int = 4) -> dict:
    """Load `atoms`, rotate by `angle` about x, count the flipped atoms."""
    return {
        "experiment_0": {
            "instructions": [["load", [0], [atoms]], ["rlx", [0], [angle]], ["measure", [0], []]],
            "num_wires": 1,
            "shots": shots,
            "wire_order": "sequential",
        }
    }


def too_many_atoms_job() -> dict:
    """A good first experiment, then one that loads far more atoms than allowed."""
    return {
        "experiment_0": spin_job()["experiment_0"],
        "experiment_1": spin_job(atoms=1_000_000_000)["experiment_0"],
    }


def hop_job() -> dict:
    """One fermion in mode 0 hops two tweezers' worth: it ends in mode 2 with certainty."""
    instructions = [["load", [0], []], ["fhop", [0, 1, 2, 3], [math.pi / 2]]]
    instructions += [["measure", [wire], []] for wire in range(8)]
    return {
        "experiment_0": {
            "instructions": instructions,
            "num_wires": 8,
            "shots": 3,
            "wire_order": "interleaved",
        }
    }


def is_done(provider: LocalProvider, job_id: str) -> bool:
    for display in ("singlequdit", "fermions"):
        try:
            return provider.get_status(display, job_id)["status"] == "DONE"
        except NotFound:
            continue
    return False


def folder_ids(base: Path, folder: str) -> set[str]:
    path = base / folder
    return {p.stem for p in path.glob("*.json")} if path.exists() else set()


def stored(base: Path, folder: str, doc_id: str) -> dict:
    return json.loads((base / folder / f"{doc_id}.json").read_text())


def where_is(base: Path, display: str, job_id: str) -> list[str]:
    """Every job folder that holds `job_id` (a job is in exactly one at any time)."""
    folders = [
        f"jobs/queued/{display}",
        "jobs/running",
        f"jobs/finished/{display}",
        "jobs/deleted",
    ]
    return [folder for folder in folders if job_id in folder_ids(base, folder)]


def submit(provider: LocalProvider, display: str, job: dict) -> str:
    """Queue a job as post_job does (status first), without the API's ledger."""
    job_id = provider.new_job_id(display, "")
    provider.submit_job(display, job_id, job)
    return job_id


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def make_spooler(base: Path) -> Callable[..., Spooler]:
    """A spooler with a provider object of its own on `base`, restamping on every step."""

    def make(*displays: str, backends: list | None = None, **options: Any) -> Spooler:
        served = backends or [BACKENDS[name] for name in displays or BACKENDS]
        options.setdefault("stamp_every", 0.0)
        return Spooler(LocalProvider("alqor", base), served, options=SpoolerOptions(**options))

    return make


@pytest.fixture
def queue(base: Path) -> LocalProvider:
    """The API's view of the folder, for queueing jobs."""
    return LocalProvider("alqor", base)


# ---- configs and liveness ------------------------------------------------------------


@pytest.mark.parametrize("display", list(EXPECTED_BACKENDS))
def test_announce_writes_each_backends_config_as_spec_section_9_describes(
    make_spooler, base, display
):
    before = utcnow().replace(microsecond=0)  # stamped in whole seconds
    make_spooler().announce()

    config = stored(base, "backends/configs", display)
    kind, wires, species, order, gates = EXPECTED_BACKENDS[display]
    assert BackendConfigIn.model_validate(config).display_name == display
    assert config["description"] and config["version"]
    assert (config["cold_atom_type"], config["num_wires"]) == (kind, wires)
    assert (config["num_species"], config["wire_order"]) == (species, order)
    assert (config["max_experiments"], config["max_shots"]) == (50, 10_000)
    assert (config["simulator"], config["sign"], config["kid"]) == (True, False, None)
    assert [set(gate) for gate in config["gates"]] == [GATE_KEYS] * len(gates)
    assert {gate["name"]: gate["coupling_map"] for gate in config["gates"]} == gates
    assert all(gate["description"] and gate["parameters"] for gate in config["gates"])
    assert config["supported_instructions"] == [*gates, "load", "measure", "barrier"]
    assert before <= datetime.fromisoformat(config["last_queue_check"]) <= utcnow()
    assert config["pending_jobs"] == 0


def test_announce_serves_only_the_backends_asked_for(make_spooler, base):
    make_spooler("fermions", "singlequdit").announce()

    assert folder_ids(base, "backends/configs") == {"fermions", "singlequdit"}


def test_announce_replaces_a_config_left_by_an_older_version(make_spooler, base, queue):
    old = {**SINGLE_QUDIT.config(), "version": "0.1", "description": "Old.", "max_shots": 5}
    queue.upload_config("singlequdit", old)

    make_spooler("singlequdit").announce()

    config = stored(base, "backends/configs", "singlequdit")
    assert (config["version"], config["max_shots"]) == (SINGLE_QUDIT.version, 10_000)
    assert config["description"] == SINGLE_QUDIT.description


def test_the_api_serves_each_announced_backend_under_its_full_name(
    client, local_provider, storage_path
):
    Spooler(LocalProvider("alqor", storage_path), list(BACKENDS.values())).announce()

    for display, (kind, wires, _, order, gates) in EXPECTED_BACKENDS.items():
        response = client.get(f"{V2}/alqor_{display}_simulator/get_config")
        served = response.json()
        assert response.status_code == 200
        assert (served["backend_name"], served["n_qubits"]) == (f"alqor_{display}_simulator", wires)
        assert (served["cold_atom_type"], served["wire_order"]) == (kind, order)
        assert served["basis_gates"] == list(gates)
        assert all(gate["coupling_map"] for gate in served["gates"])


def test_a_step_stamps_the_queue_check_so_the_api_says_operational(
    client, local_provider, storage_path
):
    spooler = Spooler(
        LocalProvider("alqor", storage_path),
        [SINGLE_QUDIT],
        options=SpoolerOptions(stamp_every=0.0),
    )
    spooler.announce()
    queue = LocalProvider("alqor", storage_path)
    stale = {**queue.get_config("singlequdit"), "last_queue_check": "2020-01-01T00:00:00+00:00"}
    queue.upload_config("singlequdit", stale)  # a spooler that stopped long ago
    submit(queue, "singlequdit", spin_job())
    submit(queue, "singlequdit", spin_job())
    url = f"{V2}/alqor_singlequdit_simulator/get_backend_status"
    status = {
        "backend_name": "alqor_singlequdit_simulator",
        "backend_version": SINGLE_QUDIT.version,
        "status_msg": "",
    }
    assert client.get(url).json() == {**status, "operational": False, "pending_jobs": 0}

    assert spooler.step() is True

    # the queue was looked at with two jobs waiting; one of them now ran
    assert client.get(url).json() == {**status, "operational": True, "pending_jobs": 2}


def test_an_empty_queue_runs_nothing_but_still_counts_as_a_look(make_spooler, base):
    spooler = make_spooler("singlequdit")
    before = utcnow().replace(microsecond=0)  # stamped in whole seconds

    assert spooler.step() is False

    assert folder_ids(base, "jobs/running") == set()
    config = stored(base, "backends/configs", "singlequdit")
    assert datetime.fromisoformat(config["last_queue_check"]) >= before


# ---- running jobs ----------------------------------------------------------------------


def test_a_posted_job_runs_to_done_and_its_result_is_served(client, token, local_provider):
    base = Path(local_provider.login["base_path"])
    spooler = Spooler(LocalProvider("alqor", base), [SINGLE_QUDIT])
    spooler.announce()
    job = spin_job(atoms=7, shots=4)
    api = f"{V2}/alqor_singlequdit_simulator"
    posted = client.post(
        f"{api}/post_job",
        {"job": json.dumps(job), "token": token},
        content_type="application/json",
    )
    job_id = posted.json()["job_id"]

    assert spooler.step() is True

    assert where_is(base, "singlequdit", job_id) == ["jobs/finished/singlequdit"]
    assert folder_ids(base, "jobs/leases") == set()
    experiment = {
        "header": {"name": "experiment_0"},
        "shots": 4,
        "success": True,
        "data": {
            "memory": ["7", "7", "7", "7"],
            "counts": {"7": 4},
            "instructions": [
                {"name": n, "wires": w, "params": p}
                for n, w, p in job["experiment_0"]["instructions"]
            ],
        },
    }
    result = {
        "backend_name": "alqor_singlequdit_simulator",
        "display_name": "singlequdit",
        "backend_version": SINGLE_QUDIT.version,
        "job_id": job_id,
        "qobj_id": None,
        "success": True,
        "status": "DONE",
        "header": {},
        "results": [experiment],
    }
    assert stored(base, "results/singlequdit", job_id) == result
    status = client.get(f"{api}/get_job_status", {"job_id": job_id, "token": token})
    assert (status.status_code, status.json()) == (
        200,
        {"job_id": job_id, "status": "DONE", "detail": "Done.", "error_message": "None"},
    )
    served = client.get(f"{api}/get_job_result", {"job_id": job_id, "token": token})
    assert (served.status_code, served.json()) == (200, result)


def test_the_oldest_job_runs_first_whatever_order_the_folder_lists(make_spooler, base, queue):
    ids = [queue.new_job_id("singlequdit", "") for _ in range(5)]
    for job_id in reversed(ids):  # the newest is written first
        queue.submit_job("singlequdit", job_id, spin_job())
    spooler = make_spooler("singlequdit")
    finished_in_order: list[str] = []

    while spooler.step():
        (new,) = folder_ids(base, "jobs/finished/singlequdit") - set(finished_in_order)
        finished_in_order.append(new)

    assert finished_in_order == ids


def test_backends_take_turns_so_one_long_queue_does_not_starve_another(make_spooler, queue):
    spins = [submit(queue, "singlequdit", spin_job()) for _ in range(3)]
    fermions = [submit(queue, "fermions", hop_job()) for _ in range(2)]
    spooler = make_spooler("singlequdit", "fermions")
    ran: list[str] = []

    while spooler.step():
        ran.append(next(j for j in spins + fermions if j not in ran and is_done(queue, j)))

    assert ran == [spins[0], fermions[0], spins[1], fermions[1], spins[2]]


# ---- jobs that fail -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("display", "job", "reason"),
    [
        (
            "singlequdit",
            too_many_atoms_job(),
            "experiment_1, instruction 0 (load): N = 1000000000 is above the limit 500",
        ),
        (
            "fermions",
            {
                "experiment_0": {
                    "instructions": [["load", [3], []], ["load", [3], []]],
                    "num_wires": 8,
                    "shots": 1,
                    "wire_order": "interleaved",
                }
            },
            "experiment_0, instruction 1 (load): mode 3 is already occupied",
        ),
        (
            "multiqudit",
            {
                "experiment_0": {
                    "instructions": [["load", [0], [2]], ["rlxly", [0, 2], [0.5]]],
                    "num_wires": 4,
                    "shots": 1,
                    "wire_order": "sequential",
                }
            },
            "experiment_0, instruction 1 (rlxly): "
            "wires [0, 2] are not in the coupling map [[0, 1], [1, 2], [2, 3]]",
        ),
    ],
    ids=["too-many-atoms", "mode-loaded-twice", "not-neighbours"],
)
def test_a_job_that_breaks_a_rule_ends_in_error_saying_where_and_the_loop_goes_on(
    make_spooler, base, queue, display, job, reason
):
    bad = submit(queue, display, job)
    good = submit(queue, "singlequdit", spin_job())
    spooler = make_spooler("singlequdit", display)

    assert [spooler.step() for _ in range(3)] == [True, True, False]

    assert stored(base, f"status/{display}", bad) == {
        "job_id": bad,
        "status": "ERROR",
        "detail": reason,
        "error_message": reason,
    }
    assert where_is(base, display, bad) == ["jobs/deleted"]
    assert bad not in folder_ids(base, f"results/{display}")
    assert stored(base, "status/singlequdit", good)["status"] == "DONE"
    assert folder_ids(base, "jobs/leases") == set()


def test_the_api_answers_a_rejected_job_with_406_and_the_reason(client, token, local_provider):
    base = Path(local_provider.login["base_path"])
    spooler = Spooler(LocalProvider("alqor", base), [SINGLE_QUDIT])
    spooler.announce()
    api = f"{V2}/alqor_singlequdit_simulator"
    posted = client.post(
        f"{api}/post_job",
        {"job": json.dumps(too_many_atoms_job()), "token": token},
        content_type="application/json",
    )
    job_id = posted.json()["job_id"]

    spooler.step()

    reason = "experiment_1, instruction 0 (load): N = 1000000000 is above the limit 500"
    error = {"job_id": job_id, "status": "ERROR", "detail": reason, "error_message": reason}
    for endpoint in ("get_job_status", "get_job_result"):
        answer = client.get(f"{api}/{endpoint}", {"job_id": job_id, "token": token})
        assert (answer.status_code, answer.json()) == (406, error)


class Fragile(SpinBackend):
    """A spin backend whose numerics blow up on every job that gets past validation."""

    def distribution(self, circuit: Any) -> Any:
        raise FloatingPointError("eigensolver diverged at /opt/lab/secret_path.py")


FRAGILE = Fragile(display_name="fragile", description="Breaks.", num_wires=1, gates=spin_gates(1))


def test_a_crashing_simulator_is_an_error_without_internals_and_the_loop_goes_on(
    make_spooler, base, queue, caplog
):
    broken = submit(queue, "fragile", spin_job())
    fine = submit(queue, "singlequdit", spin_job())
    spooler = make_spooler(backends=[FRAGILE, SINGLE_QUDIT])

    with caplog.at_level(logging.INFO, logger="spooler"):
        assert [spooler.step(), spooler.step()] == [True, True]

    status = stored(base, "status/fragile", broken)
    assert status["status"] == "ERROR"
    assert status["detail"] == status["error_message"]
    assert status["detail"].strip()
    for internal in ("Traceback", "FloatingPointError", "secret_path", "diverged"):
        assert internal not in status["detail"]
    assert where_is(base, "fragile", broken) == ["jobs/deleted"]
    assert stored(base, "status/singlequdit", fine)["status"] == "DONE"
    crash = [r for r in caplog.records if r.exc_info and broken in r.getMessage()]
    assert len(crash) == 1
    assert "secret_path" in str(crash[0].exc_info[1])  # the operator gets the details


def test_a_malformed_lease_does_not_stop_the_running_loop(make_spooler, base, queue):
    orphan = submit(queue, "singlequdit", spin_job())
    queue.claim_next("singlequdit", owner="a foreign spooler")
    (base / "jobs/leases" / f"{orphan}.json").write_text('{"written by": "someone else"}')
    spooler = make_spooler("singlequdit", idle_sleep=0.01)
    loop = threading.Thread(target=spooler.run, daemon=True)
    loop.start()
    try:
        job_id = submit(queue, "singlequdit", spin_job())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not is_done(queue, job_id):
            time.sleep(0.02)
        assert loop.is_alive()
        assert is_done(queue, job_id)
    finally:
        spooler.stop()
        loop.join(timeout=10)
    assert not loop.is_alive()


def test_a_damaged_lease_is_replaced_so_that_its_job_still_comes_back(make_spooler, base, queue):
    job_id = submit(queue, "singlequdit", spin_job())
    queue.claim_next("singlequdit", owner="a spooler that died in a power cut")
    (base / "jobs/leases" / f"{job_id}.json").write_bytes(b"")  # leases are not fsynced
    survivor = make_spooler("singlequdit")
    survivor.announce()  # the backend has its config, as it always has in service
    reaper = survivor.provider

    assert reaper.reap_expired(lease_seconds=60, now=later(1)) == []  # adopted: the clock starts
    assert reaper.reap_expired(lease_seconds=60, now=later(62)) == [job_id]

    assert where_is(base, "singlequdit", job_id) == ["jobs/queued/singlequdit"]


# ---- leases: spoolers that die ------------------------------------------------------------


def test_a_job_of_a_killed_spooler_goes_back_under_its_own_id_and_another_runs_it(
    make_spooler, base, queue
):
    job_id = submit(queue, "singlequdit", spin_job(atoms=3))
    killed = make_spooler("singlequdit")
    killed.provider.claim_next("singlequdit", owner=killed.owner)  # ... and then it died
    survivor = make_spooler("singlequdit")

    assert survivor.provider.reap_expired(lease_seconds=60, now=later(30)) == []
    assert where_is(base, "singlequdit", job_id) == ["jobs/running"]
    assert survivor.provider.reap_expired(lease_seconds=60, now=later(61)) == [job_id]
    assert where_is(base, "singlequdit", job_id) == ["jobs/queued/singlequdit"]
    assert stored(base, "status/singlequdit", job_id)["status"] == "INITIALIZING"

    assert survivor.step() is True

    assert where_is(base, "singlequdit", job_id) == ["jobs/finished/singlequdit"]
    assert stored(base, "results/singlequdit", job_id)["results"][0]["data"]["memory"] == ["3"] * 4
    assert folder_ids(base, "jobs/leases") == set()


def test_a_spooler_with_a_short_lease_hands_back_and_runs_a_dead_spoolers_job(
    make_spooler, base, queue
):
    job_id = submit(queue, "singlequdit", spin_job())
    dead = make_spooler("singlequdit")
    dead.provider.claim_next("singlequdit", owner=dead.owner)
    survivor = make_spooler("singlequdit", lease_seconds=0.2)
    time.sleep(0.3)

    assert survivor.step() is True  # reaped, back in the queue, claimed again, run

    assert where_is(base, "singlequdit", job_id) == ["jobs/finished/singlequdit"]
    assert stored(base, "status/singlequdit", job_id)["status"] == "DONE"


def test_a_job_whose_lease_runs_out_three_times_is_failed_as_a_spooler_killer(
    make_spooler, base, queue
):
    job_id = submit(queue, "singlequdit", spin_job())
    for attempt in range(1, 4):
        victim = make_spooler("singlequdit")
        claim = victim.provider.claim_next("singlequdit", owner=victim.owner)
        assert (claim.job_id, claim.attempts) == (job_id, attempt)
        assert victim.provider.reap_expired(lease_seconds=60, now=later(61)) == [job_id]
        if attempt < 3:
            assert where_is(base, "singlequdit", job_id) == ["jobs/queued/singlequdit"]

    assert where_is(base, "singlequdit", job_id) == ["jobs/deleted"]
    assert stored(base, "status/singlequdit", job_id) == {
        "job_id": job_id,
        "status": "ERROR",
        "detail": CRASHED,
        "error_message": CRASHED,
    }
    assert folder_ids(base, "jobs/leases") == set()
    assert make_spooler("singlequdit").step() is False


def test_a_spooler_that_lost_its_lease_writes_nothing(make_spooler, base, queue, caplog):
    job_id = submit(queue, "singlequdit", spin_job(atoms=2))
    reaper = LocalProvider("alqor", base)

    class Slow(SpinBackend):
        """Its spooler stalls so long during the run that another spooler reaps the job."""

        def distribution(self, circuit: Any) -> Any:
            # the stalled spooler's own lease (600 s) has run out
            assert reaper.reap_expired(lease_seconds=60, now=later(601)) == [job_id]
            return super().distribution(circuit)

    stalled = make_spooler(
        backends=[
            Slow(display_name="singlequdit", description="", num_wires=1, gates=spin_gates(1))
        ]
    )

    with caplog.at_level(logging.INFO, logger="spooler"):
        assert stalled.step() is True

    assert where_is(base, "singlequdit", job_id) == ["jobs/queued/singlequdit"]
    assert folder_ids(base, "results/singlequdit") == set()
    assert stored(base, "status/singlequdit", job_id)["status"] == "INITIALIZING"
    assert any(job_id in r.getMessage() and "LOST" in r.getMessage() for r in caplog.records)

    assert make_spooler("singlequdit").step() is True  # the job is someone else's now

    assert stored(base, "status/singlequdit", job_id)["status"] == "DONE"
    assert where_is(base, "singlequdit", job_id) == ["jobs/finished/singlequdit"]


def test_finishing_or_failing_without_the_lease_returns_false_and_changes_nothing(
    make_spooler, base, queue
):
    job_id = submit(queue, "singlequdit", spin_job())
    first = make_spooler("singlequdit")
    stale = first.provider.claim_next("singlequdit", owner=first.owner)
    first.provider.reap_expired(lease_seconds=60, now=later(61))
    make_spooler("singlequdit").step()
    written = (
        stored(base, "results/singlequdit", job_id),
        stored(base, "status/singlequdit", job_id),
    )

    assert first.provider.finish(stale, {"results": "overwritten"}, "Done.") is False
    assert first.provider.fail(stale, "failed late") is False
    assert first.provider.renew(stale) is False

    after = stored(base, "results/singlequdit", job_id), stored(base, "status/singlequdit", job_id)
    assert after == written
    assert where_is(base, "singlequdit", job_id) == ["jobs/finished/singlequdit"]


# ---- signing ---------------------------------------------------------------------------


def test_a_signing_spooler_stores_verifiable_envelopes_that_the_api_serves(
    client, token, local_provider, tmp_path
):
    base = Path(local_provider.login["base_path"])
    key_file = tmp_path / "spooler.jwk"
    key_file.write_text(json.dumps(generate_private_jwk("alqor-spooler-1")))
    options = argparse.Namespace(backends="singlequdit", lease_seconds=600.0, private_jwk=key_file)
    spooler, public = build_spooler(LocalProvider("alqor", base), options)
    spooler.announce(public)
    api = f"{V2}/alqor_singlequdit_simulator"
    posted = client.post(
        f"{api}/post_job",
        {"job": json.dumps(spin_job(atoms=4, shots=2)), "token": token},
        content_type="application/json",
    )
    job_id = posted.json()["job_id"]

    assert spooler.step() is True

    public_key = stored(base, "backends/public_keys", "alqor-spooler-1")
    assert public_key == {**public, "key_ops": "verify", "d": None}
    config = stored(base, "backends/configs", "singlequdit")
    result = stored(base, "results/singlequdit", job_id)
    for envelope in (config, result):
        assert is_envelope(envelope)
        assert envelope["header"]["kid"] == "alqor-spooler-1"
        assert verify(envelope, public_key)
    assert (config["payload"]["sign"], config["payload"]["kid"]) == (True, "alqor-spooler-1")
    forged = {**result, "payload": {**result["payload"], "success": False}}
    assert not verify(forged, public_key)

    served_config = client.get(f"{api}/get_config")
    assert (served_config.status_code, served_config.json()["backend_name"]) == (
        200,
        "alqor_singlequdit_simulator",
    )
    status = client.get(f"{api}/get_backend_status").json()
    assert status["operational"] is True
    served = client.get(f"{api}/get_job_result", {"job_id": job_id, "token": token})
    assert served.status_code == 200
    assert served.json() == {**result["payload"], "status": "DONE"}
    assert served.json()["results"][0]["data"]["counts"] == {"4": 2}


# ---- leases and queues that once misbehaved ----


def test_a_spooler_with_a_shorter_lease_leaves_a_living_spoolers_job_alone(
    make_spooler, base, queue
):
    job_id = submit(queue, "singlequdit", spin_job())
    patient = make_spooler("singlequdit", lease_seconds=600)  # renews every 150 s
    claim = patient.provider.claim_next(
        "singlequdit", owner=patient.owner, lease_seconds=patient.options.lease_seconds
    )
    hasty = make_spooler("singlequdit", lease_seconds=2)

    hasty.provider.reap_expired(hasty.options.lease_seconds, now=later(3))  # its reaper's round

    assert where_is(base, "singlequdit", job_id) == ["jobs/running"]
    assert patient.provider.holds(claim)


def test_a_stray_file_in_one_queue_does_not_starve_the_other_backends(make_spooler, base, queue):
    job_id = submit(queue, "multiqudit", spin_job())
    stray = base / "jobs/queued/singlequdit/README.json"
    stray.parent.mkdir(parents=True)
    stray.write_text("{}")
    spooler = make_spooler("singlequdit", "multiqudit")

    assert spooler.step() is True

    assert stored(base, "status/multiqudit", job_id)["status"] == "DONE"
