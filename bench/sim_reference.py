"""qiskit-cold-atom's side of bench/sim_bench.py, and the measurement both sides share.

    .cache/venvs/qiskit/bin/python bench/sim_reference.py [BUDGET] < circuits.json

Run with the python of the client's venv (tests/toolenvs.py builds it): it reads a
JSON list of circuits in our job format (`{"name", "backend", "instructions"}`) and
prints, on one line, a JSON list with each circuit's exact odds and what `measure`
found. Each circuit becomes a qiskit circuit without measurements, so that their
simulator returns the statevector and samples nothing: FermionSimulator with two
species for `fermions`, SpinSimulator with spin N/2 for the spin backends (it takes
one spin length for every wire, so every wire of a spin circuit is loaded with the
same N).

Labels are our memory strings with every wire measured in wire order: for spins
the number of flipped atoms per wire, for fermions the occupation of each
interleaved wire.

Only the standard library is imported at module level: sim_bench.py imports
`measure` from here into the project's venv, where qiskit is absent.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

Odds = dict[str, float]
# Instructions that carry no physics for their simulator: loads set the initial state
# (fermions) or the spin length (spins), and without measurements it samples nothing.
SKIPPED = ("load", "measure", "barrier")


def measure(run: Callable[[], Odds], *, budget: float = 1.0, most: int = 50) -> dict[str, Any]:
    """Time `run` warm (best and median of repeats) and trace its peak heap in one more run.

    The first call (imports done lazily, caches filled) is left out, unless it alone took
    longer than `budget` seconds: then first-call costs are negligible beside it and it is
    the only sample. Otherwise repeats go on until `budget` seconds or `most` runs. The
    peak is tracemalloc's: every Python and numpy allocation made during one run, over
    what was allocated before it.
    """
    started = time.perf_counter()
    odds = run()
    first = time.perf_counter() - started
    samples = [first] if first >= budget else []
    spent = 0.0
    while not samples or (spent < budget and len(samples) < most):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
        spent += samples[-1]
    tracemalloc.start()
    try:
        run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {
        "odds": odds,
        "best": min(samples),
        "median": statistics.median(samples),
        "repeats": len(samples),
        "peak_bytes": peak,
    }


def sequential(wire: int) -> int:
    """Their wire of our interleaved fermion wire: 2k+s is tweezer k, spin s; theirs is k + 4s."""
    return wire // 2 + 4 * (wire % 2)


def run_fermions(instructions: list[list[Any]]) -> Odds:
    """FermionSimulator's exact odds of a `fermions` circuit, under our wire labels."""
    from qiskit import QuantumCircuit
    from qiskit_cold_atom.fermions import FermionSimulator

    circuit = QuantumCircuit(8)
    for name, wires, params in instructions:
        if name == "load":
            circuit.fload(sequential(wires[0]))
        elif name not in SKIPPED:
            sites = sorted({wire // 2 for wire in wires})
            modes = sites + [site + 4 for site in sites]
            if name == "fint":
                circuit.fint(params[0], modes=modes)
            else:
                getattr(circuit, name)(list(params), modes=modes)  # fhop, fphase: one per site
    simulator = FermionSimulator()
    vector = simulator.run(circuit, num_species=2).result().data(0)["statevector"]
    basis = simulator.get_basis(circuit, num_species=2).get_occupations()
    odds: Odds = {}
    for occupations, amplitude in zip(basis, vector, strict=True):
        label = " ".join(str(occupations[sequential(wire)]) for wire in range(8))
        odds[label] = odds.get(label, 0.0) + abs(amplitude) ** 2
    return odds


def run_spins(instructions: list[list[Any]]) -> Odds:
    """SpinSimulator's exact odds of a spin circuit whose every wire holds the same N atoms."""
    from fractions import Fraction

    from qiskit import QuantumCircuit
    from qiskit_cold_atom.spins import SpinSimulator

    loads = {wires[0]: int(params[0]) for name, wires, params in instructions if name == "load"}
    if sorted(loads) != list(range(len(loads))) or len(set(loads.values())) != 1:
        raise ValueError(f"SpinSimulator needs the same N on wires 0, 1, ..: got {loads}")
    atoms, num_wires = loads[0], len(loads)
    circuit = QuantumCircuit(num_wires)
    for name, wires, params in instructions:
        if name in ("rlzlz", "rlxly"):
            getattr(circuit, name)(params[0], list(wires))
        elif name not in SKIPPED:
            getattr(circuit, name)(params[0], wires[0])
    result = SpinSimulator().run(circuit, spin=Fraction(atoms, 2)).result()
    odds: Odds = {}
    for index, amplitude in enumerate(result.data(0)["statevector"]):
        digits = []  # wire 0 is the most significant digit of the index
        for _ in range(num_wires):
            index, flipped = divmod(index, atoms + 1)
            digits.append(flipped)
        odds[" ".join(map(str, reversed(digits)))] = abs(amplitude) ** 2
    return odds


def main() -> int:
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    answers = []
    for circuit in json.load(sys.stdin):
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] theirs: {circuit['name']}", file=sys.stderr, flush=True)
        simulate = run_fermions if circuit["backend"] == "fermions" else run_spins
        instructions = circuit["instructions"]
        answers.append(measure(partial(simulate, instructions), budget=budget))
    print(json.dumps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
