"""The physics of the built-in simulators (SPEC §9), their configs and their result documents."""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from functools import reduce
from typing import Any

import numpy as np
import pytest
from scipy.linalg import expm

from spooler.simulators import BACKENDS, Backend
from spooler.simulators import fermions as fermion_sim
from spooler.simulators import spins as spin_sim
from spooler.simulators.validation import Operation, parse_job
from tests.toolenvs import QISKIT_COLD_ATOM, ensure_venv

PI = math.pi
SINGLE, MULTI, FERMIONS = (BACKENDS[name] for name in ("singlequdit", "multiqudit", "fermions"))


def experiment(
    instructions: list[list[Any]], *, shots: int = 20, num_wires: int = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "instructions": instructions,
        "num_wires": num_wires,
        "shots": shots,
        "wire_order": "sequential",
        **extra,
    }


def run_one(backend: Backend, instructions: list[list[Any]], **kwargs: Any) -> dict[str, Any]:
    """Run a one-experiment job and return that experiment's result."""
    kwargs.setdefault("num_wires", backend.num_wires)
    job = {"experiment_0": experiment(instructions, **kwargs)}
    result: dict[str, Any] = backend.run(job, job_id="a" * 24)["results"][0]
    return result


def measure_all(num_wires: int) -> list[list[Any]]:
    return [["measure", [wire], []] for wire in range(num_wires)]


# ---------------------------------------------------------------- known answers of SPEC §9


@pytest.mark.parametrize("atoms", [1, 7, 500])
@pytest.mark.parametrize("gate", ["rlx", "rly"])
def test_a_pi_rotation_flips_every_atom(atoms: int, gate: str) -> None:
    instructions = [["load", [0], [atoms]], [gate, [0], [PI]], ["measure", [0], []]]
    result = run_one(SINGLE, instructions, shots=50)
    assert result["data"]["counts"] == {str(atoms): 50}


@pytest.mark.parametrize("atoms", [10, 100, 499])
def test_a_half_pi_rotation_flips_half_the_atoms_on_average(atoms: int) -> None:
    shots = 2000
    instructions = [["load", [0], [atoms]], ["rlx", [0], [PI / 2]], ["measure", [0], []]]
    memory = run_one(SINGLE, instructions, shots=shots, seed=11)["data"]["memory"]
    mean = sum(int(outcome) for outcome in memory) / shots
    assert abs(mean - atoms / 2) < 4 * math.sqrt(atoms / (4 * shots))
    # binomial spread: the state is a coherent spin state pointing along y
    assert np.var([int(outcome) for outcome in memory]) == pytest.approx(atoms / 4, rel=0.15)


def test_rlz_alone_changes_no_count() -> None:
    instructions = [["load", [0], [20]], ["rlz", [0], [1.3]], ["rlz2", [0], [0.4]]]
    result = run_one(SINGLE, [*instructions, ["measure", [0], []]], shots=30)
    assert result["data"]["counts"] == {"0": 30}


def test_rlxly_swaps_one_flipped_atom_to_the_neighbour() -> None:
    instructions = [
        ["load", [0], [1]],
        ["load", [1], [1]],
        ["rlx", [0], [PI]],
        ["rlxly", [0, 1], [PI]],
        ["measure", [0], []],
        ["measure", [1], []],
    ]
    assert run_one(MULTI, instructions, shots=40)["data"]["counts"] == {"0 1": 40}


def test_rlzlz_alone_leaves_every_count_unchanged() -> None:
    prepare = [["load", [w], [n]] for w, n in enumerate((3, 2, 4, 1))]
    prepare += [["rlx", [w], [0.3 + 0.4 * w]] for w in range(4)]
    coupled = [*prepare, ["rlzlz", [0, 1], [1.1]], ["rlzlz", [2, 3], [-2.0]]]
    plain = run_one(MULTI, [*prepare, *measure_all(4)], shots=500, seed=5)
    with_rlzlz = run_one(MULTI, [*coupled, *measure_all(4)], shots=500, seed=5)
    assert len(plain["data"]["counts"]) > 5  # the rotations made a real distribution
    assert with_rlzlz["data"]["counts"] == plain["data"]["counts"]


def test_one_fermion_hops_to_the_next_tweezer_with_certainty() -> None:
    instructions = [["load", [0], []], ["fhop", [0, 1, 2, 3], [PI / 2]], *measure_all(8)]
    counts = run_one(FERMIONS, instructions, shots=100)["data"]["counts"]
    assert counts == {"0 0 1 0 0 0 0 0": 100}


def test_a_down_fermion_hops_on_its_own_wires() -> None:
    instructions = [["load", [5], []], ["fhop", [4, 5, 6, 7], [PI / 2]], *measure_all(8)]
    counts = run_one(FERMIONS, instructions, shots=10)["data"]["counts"]
    assert counts == {"0 0 0 0 0 0 0 1": 10}


def test_fint_alone_leaves_occupations_unchanged() -> None:
    loads = [["load", [wire], []] for wire in (0, 1, 3, 6)]
    gates = [["fint", list(range(8)), [1.7]], ["fphase", [2, 3, 4, 5], [0.4, -1.0]]]
    counts = run_one(FERMIONS, [*loads, *gates, *measure_all(8)], shots=25)["data"]["counts"]
    assert counts == {"1 1 0 1 0 0 1 0": 25}


def test_a_doubly_occupied_tweezer_stays_put_under_fint() -> None:
    instructions = [["load", [0], []], ["load", [1], []], ["fint", [0, 1], [PI]], *measure_all(8)]
    counts = run_one(FERMIONS, instructions, shots=10)["data"]["counts"]
    assert counts == {"1 1 0 0 0 0 0 0": 10}


def test_hopping_conserves_the_atoms_of_each_spin() -> None:
    loads = [["load", [wire], []] for wire in (0, 2, 3)]
    gates = [["fhop", list(range(8)), [0.7, 1.3, -0.5]], ["fint", list(range(8)), [2.0]]]
    counts = run_one(FERMIONS, [*loads, *gates, *measure_all(8)], shots=400, seed=1)
    for outcome in counts["data"]["counts"]:
        bits = [int(bit) for bit in outcome.split()]
        assert (sum(bits[0::2]), sum(bits[1::2])) == (2, 1)
    assert len(counts["data"]["counts"]) > 3


# ---------------------------------------------------------------- exactness against brute force


def spin_matrices(dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lx, Ly, Lz in the basis m = S, S-1, .., -S (k flipped atoms: m = S - k), from L+."""
    spin = (dim - 1) / 2
    m = spin - np.arange(dim)
    plus = np.zeros((dim, dim))
    for k in range(1, dim):
        plus[k - 1, k] = math.sqrt(spin * (spin + 1) - m[k] * (m[k] + 1))
    return (plus + plus.T) / 2, (plus - plus.T) / 2j, np.diag(m)


def embed(ops: dict[int, np.ndarray], dims: Sequence[int]) -> np.ndarray:
    return reduce(np.kron, [ops.get(w, np.eye(d)) for w, d in enumerate(dims)])


def spin_generator(op: Operation, dims: Sequence[int]) -> np.ndarray:
    theta = op.params[0]
    mats = {w: spin_matrices(dims[w]) for w in op.wires}
    if op.name in ("rlx", "rly", "rlz"):
        axis = "xyz".index(op.name[-1])
        return theta * embed({op.wires[0]: mats[op.wires[0]][axis]}, dims)
    if op.name == "rlz2":
        return theta * embed({op.wires[0]: mats[op.wires[0]][2] @ mats[op.wires[0]][2]}, dims)
    a, b = op.wires
    if op.name == "rlzlz":
        return theta * embed({a: mats[a][2], b: mats[b][2]}, dims)
    xx = embed({a: mats[a][0], b: mats[b][0]}, dims)
    yy = embed({a: mats[a][1], b: mats[b][1]}, dims)
    return theta * (xx + yy)


SPIN_CIRCUITS = [
    ((1,), [Operation("rlx", (0,), (0.9,)), Operation("rly", (0,), (-2.1,))]),
    ((5,), [Operation("rly", (0,), (1.2,)), Operation("rlz2", (0,), (0.7,))]),
    (
        (2, 3, 1, 4),
        [
            Operation("rly", (0,), (0.8,)),
            Operation("rlx", (3,), (1.9,)),
            Operation("rlxly", (0, 1), (2.3,)),
            Operation("rlz2", (1,), (0.6,)),
            Operation("rlxly", (2, 3), (1.4,)),
            Operation("rlzlz", (1, 2), (-0.9,)),
            Operation("rlxly", (1, 2), (-5.0,)),
            Operation("rlz", (2,), (0.3,)),
            Operation("rlx", (1,), (1.1,)),
        ],
    ),
    ((3, 0, 2, 0), [Operation("rlx", (0,), (1.0,)), Operation("rlxly", (0, 1), (1.0,))]),
]


@pytest.mark.parametrize(("atoms", "operations"), SPIN_CIRCUITS)
def test_spin_evolution_matches_the_exponential_of_the_full_generator(
    atoms: tuple[int, ...], operations: list[Operation]
) -> None:
    dims = tuple(n + 1 for n in atoms)
    state = np.zeros(math.prod(dims), dtype=complex)
    state[0] = 1
    for op in operations:
        state = expm(-1j * spin_generator(op, dims)) @ state
    evolved = spin_sim.evolve(dims, operations).ravel()
    assert np.allclose(evolved, state, atol=1e-10)


@pytest.mark.parametrize("theta", [0.7, -2.9])
def test_one_atom_turns_like_a_qubit_under_pauli_matrices_over_two(theta: float) -> None:
    """Lx = σx/2 etc. in the basis (none flipped, flipped), as qiskit-cold-atom has it."""
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    turns = {
        "rlx": [c, -1j * s],
        "rly": [c, s],
        "rlz": [np.exp(-0.5j * theta), 0],
    }
    for gate, expected in turns.items():
        evolved = spin_sim.evolve((2,), [Operation(gate, (0,), (theta,))])
        assert np.allclose(evolved, expected, atol=1e-12), gate


def test_a_half_pi_rotation_of_500_atoms_has_the_binomial_distribution() -> None:
    dims = (501,)
    evolved = spin_sim.evolve(dims, [Operation("rlx", (0,), (PI / 2,))])
    flipped = np.arange(501)
    binomial = np.array([math.comb(500, int(k)) for k in flipped], dtype=float) / 2.0**500
    assert np.allclose(np.abs(evolved) ** 2, binomial, atol=1e-12)


def fermion_operators(order: Sequence[int]) -> list[np.ndarray]:
    """Annihilators c_w of the 8 modes, Jordan-Wigner strings taken in `order` of the wires."""
    lower = np.array([[0.0, 1.0], [0.0, 0.0]])  # |1> -> |0> on a mode, basis (|0>, |1>)
    sign = np.diag([1.0, -1.0])
    ops = []
    for wire in range(8):
        position = order.index(wire)
        factors = [sign] * position + [lower] + [np.eye(2)] * (7 - position)
        ops.append(reduce(np.kron, factors))
    return ops


def brute_force_fermions(loads: Sequence[int], operations: Sequence[Operation]) -> dict[str, float]:
    """Occupation probabilities from 256x256 matrices, JW strings in sequential order."""
    order = [0, 2, 4, 6, 1, 3, 5, 7]  # all up modes, then all down modes, as qiskit orders them
    c = fermion_operators(order)
    n = [op.T @ op for op in c]
    state = np.zeros(256)
    state[0] = 1  # vacuum: every mode empty
    state = reduce(lambda psi, w: c[w].T @ psi, loads, state)
    state = state.astype(complex)
    for op in operations:
        tweezers = fermion_sim.tweezers_of(op.wires)
        if op.name == "fhop":
            terms = [
                -theta * (c[2 * k + s].T @ c[2 * k + 2 + s] + c[2 * k + 2 + s].T @ c[2 * k + s])
                for theta, k in zip(op.params, tweezers[:-1], strict=True)
                for s in (0, 1)
            ]
        elif op.name == "fint":
            terms = [op.params[0] * n[2 * k] @ n[2 * k + 1] for k in tweezers]
        else:
            terms = [
                theta * (n[2 * k] + n[2 * k + 1])
                for theta, k in zip(op.params, tweezers, strict=True)
            ]
        state = expm(-1j * sum(terms)) @ state
    probabilities: dict[str, float] = {}
    for index, amplitude in enumerate(state):
        if abs(amplitude) ** 2 > 1e-14:
            bits = format(index, "08b")  # bit i of the string is position i of `order`
            label = " ".join(bits[order.index(wire)] for wire in range(8))
            probabilities[label] = abs(amplitude) ** 2
    return probabilities


FERMION_CIRCUITS = [
    ([0, 2, 3], [Operation("fhop", tuple(range(8)), (0.7, 1.3, -0.5))]),
    (
        [0, 1, 2, 5],
        [
            Operation("fhop", (0, 1, 2, 3, 4, 5), (1.1, 0.4)),
            Operation("fint", tuple(range(8)), (2.5,)),
            Operation("fphase", (2, 3, 4, 5), (0.3, -1.2)),
            Operation("fhop", tuple(range(8)), (-0.8, 2.0, 0.6)),
            Operation("fint", (2, 3, 4, 5), (-1.3,)),
            Operation("fhop", (2, 3, 4, 5, 6, 7), (0.9, 1.7)),
        ],
    ),
    (
        [0, 2, 4, 1, 7],
        [
            Operation("fhop", tuple(range(8)), (0.5, 0.9, 1.4)),
            Operation("fint", tuple(range(8)), (3.0,)),
            Operation("fhop", tuple(range(8)), (1.2, -0.4, 0.8)),
        ],
    ),
]


@pytest.mark.parametrize(("loads", "operations"), FERMION_CIRCUITS)
def test_fermion_evolution_matches_a_full_jordan_wigner_calculation(
    loads: list[int], operations: list[Operation]
) -> None:
    instructions = [["load", [w], []] for w in loads]
    instructions += [[op.name, list(op.wires), list(op.params)] for op in operations]
    circuit = parse_job({"e": experiment([*instructions, *measure_all(8)], num_wires=8)}, FERMIONS)
    labels, probabilities = FERMIONS.distribution(circuit[0])
    expected = brute_force_fermions(loads, operations)
    assert set(labels) == set(expected)
    for label, probability in zip(labels, probabilities, strict=True):
        assert probability == pytest.approx(expected[label], abs=1e-10)


# The client's own simulator is an independent implementation of the same physics.
QISKIT_SCRIPT = r"""
import json, sys
from fractions import Fraction
import numpy as np
from qiskit import QuantumCircuit
from qiskit_cold_atom.fermions import FermionSimulator
from qiskit_cold_atom.fermions.fermion_gate_library import FermiHubbard, LoadFermions
from qiskit_cold_atom.spins import SpinSimulator
from qiskit_cold_atom.spins import spins_gate_library as spin_gates

def fermions(case):
    seq = lambda w: w // 2 + 4 * (w % 2)  # interleaved wire -> sequential wire
    qc = QuantumCircuit(8)
    for w in case["loads"]:
        qc.append(LoadFermions(), [seq(w)])
    for name, wires, params in case["gates"]:
        sites = sorted({w // 2 for w in wires})
        modes = sites + [k + 4 for k in sites]
        if name == "fhop":
            qc.fhop(params, modes=modes)
        elif name == "fint":
            qc.fint(params[0], modes=modes)
        else:
            qc.fphase(params, modes=modes)
    sim = FermionSimulator()
    result = sim.run(qc, num_species=2).result()
    vector = np.asarray(result.data(0)["statevector"])
    occupations = sim.get_basis(qc, num_species=2).get_occupations()
    out = {}
    for occ, amp in zip(occupations, vector):
        label = " ".join(str(occ[seq(w)]) for w in range(8))
        out[label] = out.get(label, 0.0) + abs(amp) ** 2
    return out

def spins(case):
    classes = {"rlx": "RLXGate", "rly": "RLYGate", "rlz": "RLZGate", "rlz2": "RLZ2Gate",
               "rlzlz": "RLZLZGate", "rlxly": "RLXLYGate"}
    qc = QuantumCircuit(case["num_wires"])
    for name, wires, params in case["gates"]:
        qc.append(getattr(spin_gates, classes[name])(params[0]), wires)
    spin = Fraction(case["atoms"], 2)
    result = SpinSimulator().run(qc, spin=spin).result()
    vector = np.asarray(result.data(0)["statevector"])
    dims = [case["atoms"] + 1] * case["num_wires"]
    out = {}
    for index, amp in enumerate(vector):
        label = " ".join(str(d) for d in np.unravel_index(index, dims))
        out[label] = abs(amp) ** 2
    return out

cases = json.load(sys.stdin)
print(json.dumps([fermions(c) if c["kind"] == "fermions" else spins(c) for c in cases]))
"""


QISKIT_CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "fermions",
        {
            "kind": "fermions",
            "loads": [0, 2, 1, 7],
            "gates": [
                ["fhop", list(range(8)), [0.5, 0.9, 1.4]],
                ["fint", list(range(8)), [3.0]],
                ["fphase", [2, 3, 4, 5], [0.3, -1.2]],
                ["fhop", [0, 1, 2, 3, 4, 5], [1.2, -0.4]],
            ],
        },
    ),
    (
        "multiqudit",
        {
            "kind": "spins",
            "atoms": 2,
            "num_wires": 3,
            "gates": [
                ["rlx", [0], [0.8]],
                ["rly", [1], [1.9]],
                ["rlxly", [0, 1], [2.3]],
                ["rlz2", [1], [0.6]],
                ["rlzlz", [1, 2], [-0.9]],
                ["rlxly", [1, 2], [1.4]],
                ["rlz", [2], [0.3]],
                ["rlx", [2], [1.1]],
            ],
        },
    ),
    (
        "singlequdit",
        {
            "kind": "spins",
            "atoms": 9,
            "num_wires": 1,
            "gates": [
                ["rlx", [0], [0.8]],
                ["rlz2", [0], [0.6]],
                ["rly", [0], [1.9]],
                ["rlz", [0], [0.3]],
                ["rlx", [0], [1.1]],
            ],
        },
    ),
]


def our_distribution(name: str, case: dict[str, Any]) -> dict[str, float]:
    """The odds of a QISKIT_CASES case, every wire measured, as our simulator computes them."""
    backend = BACKENDS[name]
    num_wires = case.get("num_wires", 8)
    if case["kind"] == "fermions":
        instructions = [["load", [w], []] for w in case["loads"]]
    else:
        instructions = [["load", [w], [case["atoms"]]] for w in range(num_wires)]
    instructions += [*case["gates"], *measure_all(num_wires)]
    circuit = parse_job({"e": experiment(instructions, num_wires=num_wires)}, backend)[0]
    labels, probabilities = backend.distribution(circuit)
    return dict(zip(labels, probabilities.tolist(), strict=True))


@pytest.mark.client
def test_distributions_agree_with_qiskit_cold_atoms_own_simulators() -> None:
    python = ensure_venv("qiskit", QISKIT_COLD_ATOM)
    answer = subprocess.run(
        [str(python), "-c", QISKIT_SCRIPT],
        input=json.dumps([case for _, case in QISKIT_CASES]),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    theirs = json.loads(answer.stdout.strip().splitlines()[-1])
    for (name, case), expected in zip(QISKIT_CASES, theirs, strict=True):
        ours = our_distribution(name, case)
        for label in set(ours) | set(expected):
            assert ours.get(label, 0.0) == pytest.approx(expected.get(label, 0.0), abs=1e-9), name


# ---------------------------------------------------------------- randomness


def test_a_seed_makes_an_experiment_reproducible() -> None:
    instructions = [["load", [0], [100]], ["rlx", [0], [PI / 2]], ["measure", [0], []]]
    first = run_one(SINGLE, instructions, shots=200, seed=42)
    again = run_one(SINGLE, instructions, shots=200, seed=42)
    other = run_one(SINGLE, instructions, shots=200, seed=43)
    assert first["data"]["memory"] == again["data"]["memory"]
    assert first["data"]["memory"] != other["data"]["memory"]


def test_without_a_seed_each_run_draws_fresh_outcomes() -> None:
    instructions = [["load", [0], [100]], ["rlx", [0], [PI / 2]], ["measure", [0], []]]
    first = run_one(SINGLE, instructions, shots=200)
    again = run_one(SINGLE, instructions, shots=200)
    assert first["data"]["memory"] != again["data"]["memory"]


# ---------------------------------------------------------------- result document


def test_the_result_document_has_the_shape_of_spec_section_3() -> None:
    job = {
        "experiment_b": experiment(
            [["load", [0], [3]], ["rlx", [0], [1.0]], ["measure", [0], []]], shots=7, seed=3
        ),
        "experiment_a": experiment([["load", [0], [2]]], shots=2),
    }
    result = SINGLE.run(job, job_id="0123456789abcdef01234567")
    assert json.loads(json.dumps(result)) == result
    assert {k: v for k, v in result.items() if k != "results"} == {
        "display_name": "singlequdit",
        "backend_version": SINGLE.config()["version"],
        "job_id": "0123456789abcdef01234567",
        "qobj_id": None,
        "success": True,
        "status": "DONE",
        "header": {},
    }
    first, second = result["results"]
    assert [first["header"], second["header"]] == [
        {"name": "experiment_b"},
        {"name": "experiment_a"},
    ]
    assert (first["shots"], first["success"]) == (7, True)
    assert set(first["data"]) == {"memory", "counts", "instructions"}
    assert first["data"]["instructions"] == [  # objects, as sqooler's result schema reads them
        {"name": "load", "wires": [0], "params": [3]},
        {"name": "rlx", "wires": [0], "params": [1.0]},
        {"name": "measure", "wires": [0], "params": []},
    ]
    assert len(first["data"]["memory"]) == 7
    assert first["data"]["counts"] == dict(Counter(first["data"]["memory"]))
    assert all(outcome in {"0", "1", "2", "3"} for outcome in first["data"]["memory"])
    assert second["data"] == {
        "memory": ["", ""],
        "counts": {"": 2},
        "instructions": [{"name": "load", "wires": [0], "params": [2]}],
    }


def test_memory_lists_measured_wires_in_ascending_order_whatever_the_measure_order() -> None:
    instructions = [
        ["load", [2], []],
        ["measure", [5], []],
        ["measure", [2], []],
        ["measure", [0], []],
    ]
    result = run_one(FERMIONS, instructions, shots=3)
    assert result["data"]["memory"] == ["0 1 0"] * 3


def test_an_unloaded_wire_measures_zero_and_gates_leave_it_alone() -> None:
    instructions = [
        ["load", [1], [4]],
        ["rlx", [0], [PI]],
        ["rlxly", [0, 1], [PI / 2]],
        ["rlx", [1], [PI]],
        *measure_all(4),
    ]
    assert run_one(MULTI, instructions, shots=5)["data"]["counts"] == {"0 4 0 0": 5}


def test_measuring_a_wire_twice_reports_it_once() -> None:
    instructions = [["load", [0], [3]], ["measure", [0], []], ["measure", [0], []]]
    assert run_one(SINGLE, instructions, shots=2)["data"]["memory"] == ["0", "0"]


def test_counts_match_memory_for_a_spread_distribution() -> None:
    instructions = [["load", [0], [30]], ["rlx", [0], [1.0]], ["measure", [0], []]]
    data = run_one(SINGLE, instructions, shots=3000, seed=9)["data"]
    assert sum(data["counts"].values()) == 3000
    assert data["counts"] == dict(Counter(data["memory"]))
    assert len(data["counts"]) > 5


# ---------------------------------------------------------------- configs


ALLOWED_GATE_KEYS = {
    "name",
    "parameters",
    "qasm_def",
    "coupling_map",
    "latency_map",
    "conditional",
    "description",
}


def test_backends_are_keyed_by_display_name_in_order() -> None:
    assert list(BACKENDS) == ["singlequdit", "multiqudit", "fermions"]
    assert all(name == backend.display_name for name, backend in BACKENDS.items())


@pytest.mark.parametrize(
    ("name", "atom_type", "wires", "order", "species", "gates"),
    [
        ("singlequdit", "spin", 1, "sequential", 1, ["rlx", "rly", "rlz", "rlz2"]),
        (
            "multiqudit",
            "spin",
            4,
            "sequential",
            1,
            ["rlx", "rly", "rlz", "rlz2", "rlzlz", "rlxly"],
        ),
        ("fermions", "fermion", 8, "interleaved", 2, ["fhop", "fint", "fphase"]),
    ],
)
def test_config_describes_the_backend_as_qiskit_reads_it(
    name: str, atom_type: str, wires: int, order: str, species: int, gates: list[str]
) -> None:
    config = BACKENDS[name].config()
    assert json.loads(json.dumps(config)) == config
    assert set(config) == {
        "description",
        "version",
        "display_name",
        "cold_atom_type",
        "gates",
        "max_experiments",
        "max_shots",
        "simulator",
        "supported_instructions",
        "num_wires",
        "wire_order",
        "num_species",
    }
    assert (config["display_name"], config["cold_atom_type"]) == (name, atom_type)
    assert (config["num_wires"], config["wire_order"], config["num_species"]) == (
        wires,
        order,
        species,
    )
    assert (config["max_experiments"], config["max_shots"], config["simulator"]) == (
        50,
        10000,
        True,
    )
    assert [gate["name"] for gate in config["gates"]] == gates
    assert config["supported_instructions"] == [*gates, "load", "measure", "barrier"]
    for gate in config["gates"]:
        assert set(gate) <= ALLOWED_GATE_KEYS
        assert gate["coupling_map"]
        assert all(wires == sorted(wires) for wires in gate["coupling_map"])
        assert all(isinstance(p, str) for p in gate["parameters"])
        assert gate["qasm_def"].startswith(f"gate {gate['name']}(")


def test_fermion_coupling_maps_list_every_run_of_tweezers() -> None:
    maps = {gate["name"]: gate["coupling_map"] for gate in FERMIONS.config()["gates"]}
    pairs = [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    assert len(maps["fhop"]) == 6
    assert all(pair in maps["fhop"] for pair in pairs)
    assert list(range(8)) in maps["fhop"]
    assert [0, 1] not in maps["fhop"]
    assert len(maps["fint"]) == len(maps["fphase"]) == 10
    assert [m for m in maps["fint"] if len(m) == 2] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [2, 3, 4, 5, 6, 7] in maps["fphase"]


def test_multiqudit_couples_only_neighbours() -> None:
    maps = {gate["name"]: gate["coupling_map"] for gate in MULTI.config()["gates"]}
    assert maps["rlzlz"] == maps["rlxly"] == [[0, 1], [1, 2], [2, 3]]
    assert maps["rlx"] == [[0], [1], [2], [3]]


# ---------------------------------------------------------------- speed


@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_trivial_job_costs_well_under_a_millisecond(name: str) -> None:
    backend = BACKENDS[name]
    load = ["load", [0], [] if name == "fermions" else [10]]
    job = {"experiment_0": experiment([load, ["measure", [0], []]], shots=1, num_wires=1)}
    backend.run(job, job_id="x")
    runs = 300
    start = time.perf_counter()
    for _ in range(runs):
        backend.run(job, job_id="x")
    assert (time.perf_counter() - start) / runs < 1e-3
