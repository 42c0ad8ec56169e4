"""Jobs that break a rule of their backend are refused with a sentence that says where and why."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from spooler.simulators import BACKENDS, JobRejected

PI = math.pi
FHOP_MAP = (
    "[[0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7], "
    "[2, 3, 4, 5], [2, 3, 4, 5, 6, 7], [4, 5, 6, 7]]"
)


def job_of(*experiments: list[list[Any]], num_wires: int = 1, **extra: Any) -> dict[str, Any]:
    """A job with one experiment per instruction list, named experiment_0, experiment_1, ..."""
    return {
        f"experiment_{index}": {
            "instructions": instructions,
            "num_wires": num_wires,
            "shots": 3,
            "wire_order": "sequential",
            **extra,
        }
        for index, instructions in enumerate(experiments)
    }


def with_field(key: str, value: Any) -> dict[str, Any]:
    job = job_of([["load", [0], [2]], ["measure", [0], []]])
    job["experiment_0"][key] = value
    return job


def without_field(key: str) -> dict[str, Any]:
    job = job_of([["load", [0], [2]], ["measure", [0], []]])
    del job["experiment_0"][key]
    return job


OK = [["load", [0], [2]], ["measure", [0], []]]

REFUSED: list[tuple[str, str, object, str]] = [
    # ------------------------------------------------------------- the job and its experiments
    (
        "not an object",
        "singlequdit",
        [OK],
        "the job must be a JSON object mapping experiment names to experiments",
    ),
    ("no experiment", "singlequdit", {}, "the job holds no experiments"),
    (
        "51 experiments",
        "singlequdit",
        job_of(*[OK] * 51),
        "experiment_50: the job holds 51 experiments, above the limit 50",
    ),
    (
        "experiment not an object",
        "singlequdit",
        {"experiment_0": [OK]},
        "experiment_0: an experiment must be an object with instructions, num_wires and shots",
    ),
    ("shots missing", "singlequdit", without_field("shots"), "experiment_0: shots is missing"),
    (
        "instructions missing",
        "singlequdit",
        without_field("instructions"),
        "experiment_0: instructions is missing",
    ),
    (
        "num_wires missing",
        "singlequdit",
        without_field("num_wires"),
        "experiment_0: num_wires is missing",
    ),
    (
        "shots a string",
        "singlequdit",
        with_field("shots", "3"),
        "experiment_0: shots must be a whole number",
    ),
    (
        "shots a bool",
        "singlequdit",
        with_field("shots", True),
        "experiment_0: shots must be a whole number",
    ),
    (
        "shots a float",
        "singlequdit",
        with_field("shots", 3.5),
        "experiment_0: shots must be a whole number",
    ),
    (
        "too many shots",
        "singlequdit",
        with_field("shots", 10001),
        "experiment_0: shots = 10001 is above the limit 10000",
    ),
    (
        "no shots",
        "singlequdit",
        with_field("shots", 0),
        "experiment_0: shots = 0 is below the minimum 1",
    ),
    (
        "num_wires a list",
        "singlequdit",
        with_field("num_wires", [1]),
        "experiment_0: num_wires must be a whole number",
    ),
    (
        "too many wires",
        "singlequdit",
        with_field("num_wires", 2),
        "experiment_0: num_wires = 2 is above the limit 1",
    ),
    (
        "too many modes",
        "fermions",
        job_of([], num_wires=9),
        "experiment_0: num_wires = 9 is above the limit 8",
    ),
    (
        "no wires",
        "singlequdit",
        with_field("num_wires", 0),
        "experiment_0: num_wires = 0 is below the minimum 1",
    ),
    (
        "unknown wire order",
        "singlequdit",
        with_field("wire_order", "diagonal"),
        'experiment_0: wire_order must be "sequential" or "interleaved"',
    ),
    (
        "negative seed",
        "singlequdit",
        with_field("seed", -1),
        "experiment_0: seed = -1 is below the minimum 0",
    ),
    (
        "fractional seed",
        "singlequdit",
        with_field("seed", 1.5),
        "experiment_0: seed must be a whole number",
    ),
    (
        "instructions a dict",
        "singlequdit",
        with_field("instructions", {}),
        "experiment_0: instructions must be a list",
    ),
    # ------------------------------------------------------------- the shape of an instruction
    (
        "instruction a string",
        "singlequdit",
        job_of(["load"]),
        "experiment_0, instruction 0: an instruction must be [name, [wires], [params]]",
    ),
    (
        "instruction without params",
        "singlequdit",
        job_of([["load", [0], [2]], ["measure", [0]]]),
        "experiment_0, instruction 1 (measure): an instruction must be [name, [wires], [params]]",
    ),
    (
        "instruction too long",
        "singlequdit",
        job_of([["load", [0], [2], "extra"]]),
        "experiment_0, instruction 0 (load): an instruction must be [name, [wires], [params]]",
    ),
    (
        "name not a string",
        "singlequdit",
        job_of([[7, [0], [2]]]),
        "experiment_0, instruction 0: an instruction must be [name, [wires], [params]]",
    ),
    (
        "wire a bool",
        "singlequdit",
        job_of([["load", [True], [2]]]),
        "experiment_0, instruction 0 (load): wires must be a list of whole numbers",
    ),
    (
        "wires not a list",
        "singlequdit",
        job_of([["load", 0, [2]]]),
        "experiment_0, instruction 0 (load): wires must be a list of whole numbers",
    ),
    (
        "angle a string",
        "singlequdit",
        job_of([["load", [0], [2]], ["rlx", [0], ["pi"]]]),
        "experiment_0, instruction 1 (rlx): parameters must be a list of finite numbers",
    ),
    (
        "angle not finite",
        "singlequdit",
        job_of([["rlx", [0], [math.inf]]]),
        "experiment_0, instruction 0 (rlx): parameters must be a list of finite numbers",
    ),
    # ------------------------------------------------------------- names, wires, parameters
    (
        "unknown gate",
        "singlequdit",
        job_of([["load", [0], [2]], ["rlxly", [0, 1], [1.0]]]),
        "experiment_0, instruction 1 (rlxly): unknown instruction; this backend supports "
        "rlx, rly, rlz, rlz2, load, measure, barrier",
    ),
    (
        "wire beyond the experiment",
        "multiqudit",
        job_of([["load", [2], [2]]], num_wires=2),
        "experiment_0, instruction 0 (load): wire 2 is out of range: num_wires is 2",
    ),
    (
        "negative wire",
        "singlequdit",
        job_of([["measure", [-1], []]]),
        "experiment_0, instruction 0 (measure): wire -1 is out of range: num_wires is 1",
    ),
    (
        "not neighbours",
        "multiqudit",
        job_of([["rlzlz", [0, 2], [1.0]]], num_wires=4),
        "experiment_0, instruction 0 (rlzlz): wires [0, 2] are not in the coupling map "
        "[[0, 1], [1, 2], [2, 3]]",
    ),
    (
        "the same wire twice",
        "multiqudit",
        job_of([["rlxly", [1, 1], [1.0]]], num_wires=4),
        "experiment_0, instruction 0 (rlxly): wires [1, 1] are not in the coupling map "
        "[[0, 1], [1, 2], [2, 3]]",
    ),
    (
        "hop inside one tweezer",
        "fermions",
        job_of([["fhop", [0, 1], [1.0]]], num_wires=8),
        f"experiment_0, instruction 0 (fhop): wires [0, 1] are not in the coupling map {FHOP_MAP}",
    ),
    (
        "hop on half a tweezer",
        "fermions",
        job_of([["fhop", [0, 2], [1.0]]], num_wires=8),
        f"experiment_0, instruction 0 (fhop): wires [0, 2] are not in the coupling map {FHOP_MAP}",
    ),
    (
        "rotation without angle",
        "singlequdit",
        job_of([["rlx", [0], []]]),
        "experiment_0, instruction 0 (rlx): takes 1 parameter, got 0",
    ),
    (
        "one angle for three bonds",
        "fermions",
        job_of([["fhop", list(range(8)), [1.0]]], num_wires=8),
        "experiment_0, instruction 0 (fhop): takes 3 parameters (one per bond), got 1",
    ),
    (
        "one angle for two tweezers",
        "fermions",
        job_of([["fphase", [4, 5, 6, 7], [1.0]]], num_wires=8),
        "experiment_0, instruction 0 (fphase): takes 2 parameters (one per tweezer), got 1",
    ),
    (
        "two angles for fint",
        "fermions",
        job_of([["fint", [4, 5, 6, 7], [1.0, 2.0]]], num_wires=8),
        "experiment_0, instruction 0 (fint): takes 1 parameter, got 2",
    ),
    (
        "angle above 2π",
        "singlequdit",
        job_of([["load", [0], [2]], ["rly", [0], [7]]]),
        "experiment_0, instruction 1 (rly): parameter 0 = 7 is outside the range [-2π, 2π]",
    ),
    (
        "angle below -2π",
        "fermions",
        job_of([["fhop", list(range(8)), [0.1, -6.5, 0]]], num_wires=8),
        "experiment_0, instruction 0 (fhop): parameter 1 = -6.5 is outside the range [-2π, 2π]",
    ),
    (
        "measure with a parameter",
        "singlequdit",
        job_of([["measure", [0], [1]]]),
        "experiment_0, instruction 0 (measure): takes no parameters, got 1",
    ),
    (
        "measure on two wires",
        "multiqudit",
        job_of([["measure", [0, 1], []]], num_wires=4),
        "experiment_0, instruction 0 (measure): takes exactly 1 wire, got 2",
    ),
    (
        "barrier with a parameter",
        "singlequdit",
        job_of([["barrier", [0], [0.5]]]),
        "experiment_0, instruction 0 (barrier): takes no parameters, got 1",
    ),
    # ------------------------------------------------------------- load
    (
        "a billion atoms",
        "singlequdit",
        job_of(OK, [["load", [0], [1000000000]]]),
        "experiment_1, instruction 0 (load): N = 1000000000 is above the limit 500",
    ),
    (
        "501 atoms",
        "multiqudit",
        job_of([["load", [3], [501.0]]], num_wires=4),
        "experiment_0, instruction 0 (load): N = 501 is above the limit 500",
    ),
    (
        "half an atom more",
        "singlequdit",
        job_of([["load", [0], [10.5]]]),
        "experiment_0, instruction 0 (load): N = 10.5 is not a whole number",
    ),
    (
        "no atom",
        "singlequdit",
        job_of([["load", [0], [0]]]),
        "experiment_0, instruction 0 (load): N = 0 is below the minimum 1",
    ),
    (
        "load without N",
        "singlequdit",
        job_of([["load", [0], []]]),
        "experiment_0, instruction 0 (load): takes 1 parameter (the number of atoms N), got 0",
    ),
    (
        "load on two wires",
        "multiqudit",
        job_of([["load", [0, 1], [2]]], num_wires=4),
        "experiment_0, instruction 0 (load): takes exactly 1 wire, got 2",
    ),
    (
        "load twice",
        "singlequdit",
        job_of([["load", [0], [2]], ["load", [0], [3]]]),
        "experiment_0, instruction 1 (load): wire 0 is already loaded",
    ),
    (
        "load after a gate",
        "singlequdit",
        job_of([["rlx", [0], [1.0]], ["load", [0], [3]]]),
        "experiment_0, instruction 1 (load): wire 0 was already touched by a gate; "
        "load comes first",
    ),
    (
        "load after a measurement",
        "singlequdit",
        job_of([["measure", [0], []], ["load", [0], [3]]]),
        "experiment_0, instruction 1 (load): wire 0 was already measured; load comes first",
    ),
    (
        "Hilbert space too big",
        "multiqudit",
        job_of([["load", [0], [500]], ["load", [1], [500]]], num_wires=4),
        "experiment_0, instruction 1 (load): the total Hilbert dimension 251001 "
        "is above the limit 4096",
    ),
    (
        "Hilbert space just too big",
        "multiqudit",
        job_of([["load", [w], [15]] for w in range(3)] + [["load", [3], [1]]], num_wires=4),
        "experiment_0, instruction 3 (load): the total Hilbert dimension 8192 "
        "is above the limit 4096",
    ),
    (
        "fermion load with a parameter",
        "fermions",
        job_of([["load", [3], [1]]], num_wires=8),
        "experiment_0, instruction 0 (load): takes no parameters, got 1",
    ),
    (
        "mode occupied",
        "fermions",
        job_of([["load", [3], []], ["load", [3], []]], num_wires=8),
        "experiment_0, instruction 1 (load): mode 3 is already occupied",
    ),
    (
        "fermion load after a hop over that mode",
        "fermions",
        job_of([["load", [0], []], ["fhop", [0, 1, 2, 3], [1.0]], ["load", [3], []]], num_wires=8),
        "experiment_0, instruction 2 (load): wire 3 was already touched by a gate; "
        "load comes first",
    ),
    # ------------------------------------------------------------- after a measurement
    (
        "rotation after measure",
        "singlequdit",
        job_of([["load", [0], [2]], ["measure", [0], []], ["rlx", [0], [1.0]]]),
        "experiment_0, instruction 2 (rlx): wire 0 was already measured; "
        "gates after a measurement are refused",
    ),
    (
        "hop after measuring one of its modes",
        "fermions",
        job_of(
            [["load", [0], []], ["measure", [3], []], ["fhop", [0, 1, 2, 3], [1.0]]], num_wires=8
        ),
        "experiment_0, instruction 2 (fhop): wire 3 was already measured; "
        "gates after a measurement are refused",
    ),
]


@pytest.mark.parametrize(
    ("backend", "job", "reason"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_job_breaking_a_rule_is_refused_with_its_reason(
    backend: str, job: object, reason: str
) -> None:
    with pytest.raises(JobRejected) as refused:
        BACKENDS[backend].run(copy.deepcopy(job), job_id="0" * 24)
    assert str(refused.value) == reason


ACCEPTED: list[tuple[str, str, dict[str, Any]]] = [
    ("N given as a float", "singlequdit", job_of([["load", [0], [10.0]], ["measure", [0], []]])),
    ("500 atoms", "singlequdit", job_of([["load", [0], [500]], ["measure", [0], []]])),
    (
        "angle of exactly 2π",
        "singlequdit",
        job_of([["rlx", [0], [2 * PI]], ["rlz", [0], [-2 * PI]]]),
    ),
    (
        "barrier across the register",
        "multiqudit",
        job_of([["barrier", [0, 1, 2, 3], []]], num_wires=4),
    ),
    (
        "a gate on a wire never loaded",
        "multiqudit",
        job_of([["rlxly", [2, 3], [1.0]]], num_wires=4),
    ),
    (
        "a load after a gate on another wire",
        "multiqudit",
        job_of([["load", [0], [1]], ["rlx", [0], [1.0]], ["load", [1], [2]]], num_wires=4),
    ),
    (
        "a gate on another wire after a measurement",
        "multiqudit",
        job_of([["load", [0], [1]], ["measure", [0], []], ["rlx", [1], [1.0]]], num_wires=4),
    ),
    (
        "exactly 4096 states",
        "multiqudit",
        job_of([["load", [w], [15]] for w in range(3)], num_wires=4),
    ),
    (
        "hop wires in qiskit's interleaved order",
        "fermions",
        job_of([["load", [0], []], ["fhop", [0, 2, 1, 3], [1.0]]], num_wires=8),
    ),
    (
        "fewer wires than the backend",
        "fermions",
        job_of([["fint", [0, 1, 2, 3], [1.0]]], num_wires=4),
    ),
    ("no wire_order", "singlequdit", without_field("wire_order")),
    ("a null seed", "singlequdit", with_field("seed", None)),
    ("unknown keys", "singlequdit", with_field("comment", "hello")),
    ("50 experiments", "singlequdit", job_of(*[OK] * 50)),
    ("the most shots", "singlequdit", with_field("shots", 10000)),
    ("no instruction at all", "fermions", job_of([], num_wires=8)),
]


@pytest.mark.parametrize(
    ("backend", "job"), [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED]
)
def test_a_job_within_the_rules_runs(backend: str, job: dict[str, Any]) -> None:
    result = BACKENDS[backend].run(job, job_id="0" * 24)
    assert [r["header"]["name"] for r in result["results"]] == list(job)


def test_the_whole_job_is_checked_before_anything_is_simulated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = BACKENDS["singlequdit"]
    simulated: list[str] = []
    monkeypatch.setattr(
        backend, "distribution", lambda circuit: simulated.append(circuit.name) or ([""], None)
    )
    job = job_of(OK, OK, [["load", [0], [2]], ["rlx", [0], [9]]])
    with pytest.raises(JobRejected, match=r"^experiment_2, instruction 1 \(rlx\)"):
        backend.run(job, job_id="0" * 24)
    assert simulated == []


WEIRD_VALUES: list[object] = [None, "x", -1, 1.5, True, [], {}, [[]], [None], math.nan, 10**30]


def mutations(value: object) -> list[object]:
    """Copies of a valid job with one part at a time replaced by `value`."""
    base = job_of([["load", [0], [2]], ["rlx", [0], [1.0]], ["measure", [0], []]])
    spots = [
        lambda job: job.__setitem__("experiment_0", value),
        lambda job: job["experiment_0"].__setitem__("instructions", value),
        lambda job: job["experiment_0"].__setitem__("num_wires", value),
        lambda job: job["experiment_0"].__setitem__("shots", value),
        lambda job: job["experiment_0"].__setitem__("seed", value),
        lambda job: job["experiment_0"].__setitem__("wire_order", value),
        lambda job: job["experiment_0"]["instructions"].__setitem__(1, value),
        lambda job: job["experiment_0"]["instructions"][1].__setitem__(0, value),
        lambda job: job["experiment_0"]["instructions"][1].__setitem__(1, value),
        lambda job: job["experiment_0"]["instructions"][1].__setitem__(2, value),
        lambda job: job["experiment_0"]["instructions"][1][1].__setitem__(0, value),
        lambda job: job["experiment_0"]["instructions"][1][2].__setitem__(0, value),
        lambda job: job["experiment_0"]["instructions"][0][2].__setitem__(0, value),
    ]
    jobs = []
    for spot in spots:
        job = copy.deepcopy(base)
        spot(job)
        jobs.append(job)
    return [*jobs, value]


@pytest.mark.parametrize("value", WEIRD_VALUES, ids=repr)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_malformed_job_is_refused_never_crashes(backend: str, value: object) -> None:
    for job in mutations(value):
        try:
            BACKENDS[backend].run(job, job_id="0" * 24)
        except JobRejected as refused:
            assert str(refused).startswith(("experiment_0", "the job"))
