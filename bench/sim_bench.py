"""Simulator benchmark: the built-in simulators against qiskit-cold-atom's own, same circuits.

    .venv/bin/python bench/sim_bench.py [--budget 1.0]

Five circuits cover the three backends, up to the largest multiqudit job (4 wires of
7 atoms, spin 7/2 each: dimension 8^4 = 4096, the limit). Both sides go from the
circuit's instructions to its exact outcome probabilities: ours parses the job
(spooler.simulators.validation.parse_job) and calls the backend's `distribution`,
the odds the shot sampler draws from; theirs builds the qiskit circuit and runs
FermionSimulator or SpinSimulator for its statevector (bench/sim_reference.py, in the
client's venv that tests/toolenvs.py builds, since their pins clash with ours).
Neither side samples shots.

Measured, by the same code on both sides (sim_reference.measure), in-process for ours
and in one subprocess for theirs, interpreter start-up and imports left out:
- time: the best of warm repeats (first call left out; repeats for up to --budget
  seconds per circuit and side, at most 50; a run slower than the budget is timed once);
- peak: tracemalloc's peak during one more run, i.e. the Python and numpy memory the
  simulation itself allocates (the same kind of number on both sides, whatever else
  the process holds). Our caches of eigenbases, filled by the first run and kept, are
  not in it; the footnote gives our largest first-run peak, caches empty, beside it;
- |dp|: the largest difference of one outcome's probability between the sides, over
  every outcome either side gives (an outcome one side leaves out counts as 0).

Targets: every ratio >= 5, |dp| <= 1e-12 everywhere, and the 4 x 7 multiqudit circuit
under 0.1 s on our side. The exit status is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from harness import ROOT, BenchError, guarded, raise_on_sigterm, say
from sim_reference import Odds, measure

from spooler.simulators import BACKENDS
from spooler.simulators.validation import parse_job

RATIO_TARGET = 5.0
AGREEMENT = 1e-12
LARGEST = "multiqudit 4x7"
LARGEST_SECONDS = 0.1
MIB = 2**20


@dataclass(frozen=True)
class Case:
    """A circuit in our job format, every wire measured at the end."""

    name: str
    backend: str
    instructions: list[list[Any]]

    @property
    def num_wires(self) -> int:
        return BACKENDS[self.backend].num_wires

    def job(self) -> dict[str, Any]:
        measured = [["measure", [wire], []] for wire in range(self.num_wires)]
        experiment = {"instructions": [*self.instructions, *measured], "shots": 1}
        return {"experiment_0": {**experiment, "num_wires": self.num_wires}}


def spins(wires: int, atoms: int, gates: list[list[Any]]) -> list[list[Any]]:
    """`atoms` loaded on each of the first `wires` wires, then the gates."""
    return [*(["load", [wire], [atoms]] for wire in range(wires)), *gates]


CHAIN = [  # turns on two wires, spread to every wire by flip-flops, an Ising coupling
    ["rlx", [0], [0.9]],
    ["rly", [2], [0.6]],
    ["rlxly", [0, 1], [1.1]],
    ["rlzlz", [1, 2], [0.7]],
    ["rlxly", [1, 2], [0.8]],
    ["rlxly", [2, 3], [1.3]],
]

CASES = [
    Case(
        "fermions 2+2",
        "fermions",
        [
            *(["load", [wire], []] for wire in (0, 1, 4, 7)),
            ["fhop", list(range(8)), [0.5, 0.9, 1.4]],
            ["fint", list(range(8)), [3.0]],
            ["fphase", [2, 3, 4, 5], [0.3, -1.2]],
            ["fhop", [0, 1, 2, 3, 4, 5], [1.2, -0.4]],
            ["fint", [2, 3, 4, 5, 6, 7], [-1.3]],
            ["fhop", list(range(8)), [-0.8, 2.0, 0.6]],
        ],
    ),
    Case(
        "singlequdit 500",
        "singlequdit",
        spins(
            1,
            500,
            [
                ["rlx", [0], [0.8]],
                ["rlz2", [0], [0.03]],
                ["rly", [0], [1.9]],
                ["rlz", [0], [0.3]],
                ["rlx", [0], [1.1]],
            ],
        ),
    ),
    Case("multiqudit 4x1", "multiqudit", spins(4, 1, CHAIN)),
    Case("multiqudit 4x3", "multiqudit", spins(4, 3, CHAIN)),
    Case(LARGEST, "multiqudit", spins(4, 7, CHAIN)),
]


@dataclass
class Row:
    case: Case
    ours: dict[str, Any]
    theirs: dict[str, Any]
    first_peak: int = 0

    @property
    def ratio(self) -> float:
        return float(self.theirs["best"] / self.ours["best"])

    @property
    def deviation(self) -> float:
        ours, theirs = self.ours["odds"], self.theirs["odds"]
        return float(max(abs(ours.get(k, 0.0) - theirs.get(k, 0.0)) for k in ours.keys() | theirs))

    def failures(self) -> list[str]:
        missed = []
        if self.ratio < RATIO_TARGET:
            missed.append(f"ratio {self.ratio:.1f} < {RATIO_TARGET:.0f}")
        if self.deviation > AGREEMENT:
            missed.append(f"|dp| {self.deviation:.1e} > {AGREEMENT:.0e}")
        if self.case.name == LARGEST and self.ours["best"] >= LARGEST_SECONDS:
            missed.append(f"{self.ours['best']:.3f} s >= {LARGEST_SECONDS} s")
        return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budget", type=float, default=1.0, help="seconds of repeats per circuit and side"
    )
    options = parser.parse_args(argv)
    raise_on_sigterm()  # so that subprocess.run ends their side too
    return guarded(lambda: run(options))


def run(options: argparse.Namespace) -> int:
    theirs = reference(CASES, options.budget)
    rows = []
    for case, answer in zip(CASES, theirs, strict=True):
        say(f"ours: {case.name}")
        first = first_peak(case)  # before anything has filled our caches for this case
        timed = measure(partial(ours, case), budget=options.budget)
        rows.append(Row(case, timed, answer, first))
    return report(rows)


def first_peak(case: Case) -> int:
    """tracemalloc's peak of our first run of a circuit, caches empty (for the footnote)."""
    tracemalloc.start()
    try:
        ours(case)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def ours(case: Case) -> Odds:
    """Our exact odds of a circuit, from its job document, as the spooler computes them."""
    backend = BACKENDS[case.backend]
    circuit = parse_job(case.job(), backend)[0]
    labels, probabilities = backend.distribution(circuit)
    return dict(zip(labels, probabilities.tolist(), strict=True))


def reference(cases: list[Case], budget: float) -> list[dict[str, Any]]:
    """qiskit-cold-atom's answers for every circuit, from bench/sim_reference.py."""
    python = reference_python()
    say(f"their side: bench/sim_reference.py under {python}")
    circuits = [
        {"name": case.name, "backend": case.backend, "instructions": case.instructions}
        for case in cases
    ]
    done = subprocess.run(
        [str(python), str(Path(__file__).with_name("sim_reference.py")), str(budget)],
        input=json.dumps(circuits),
        stdout=subprocess.PIPE,  # progress and tracebacks go straight to our stderr
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"sim_reference.py exited with {done.returncode} (its stderr is above)")
    answers: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return answers


def reference_python() -> Path:
    """The python of the client's venv, built on first use as the test command builds it."""
    sys.path.insert(0, str(ROOT))  # tests/ is no installed package
    from tests.toolenvs import QISKIT_COLD_ATOM, ensure_venv

    return ensure_venv("qiskit", QISKIT_COLD_ATOM)


def dimension(case: Case) -> int:
    """The size of the state space the circuit's loads span on our side."""
    loads = [i[1][0] for i in case.instructions if i[0] == "load"]
    if case.backend == "fermions":
        up = sum(1 for wire in loads if wire % 2 == 0)
        return math.comb(4, up) * math.comb(4, len(loads) - up)
    atoms = [i[2][0] for i in case.instructions if i[0] == "load"]
    return math.prod(int(n) + 1 for n in atoms)


def report(rows: list[Row]) -> int:
    print()
    print("built-in simulators vs qiskit-cold-atom 0.2.1: circuit -> exact probabilities")
    print()
    head = f"{'circuit':<18}{'dim':>6}{'gates':>7}{'ours ms':>10}{'theirs ms':>11}{'ratio':>9}"
    print(f"{head}{'ours MiB':>10}{'theirs MiB':>12}{'max |dp|':>10}  result")
    missed = 0
    for row in rows:
        gates = sum(1 for i in row.case.instructions if i[0] != "load")
        failures = row.failures()
        missed += bool(failures)
        print(
            f"{row.case.name:<18}{dimension(row.case):>6}{gates:>7}"
            f"{row.ours['best'] * 1e3:>10.3f}{row.theirs['best'] * 1e3:>11.1f}"
            f"{row.ratio:>8.0f}x{row.ours['peak_bytes'] / MIB:>10.2f}"
            f"{row.theirs['peak_bytes'] / MIB:>12.1f}{row.deviation:>10.1e}"
            f"  {'; '.join(failures) or 'pass'}"
        )
    cold = max(rows, key=lambda row: row.first_peak)
    print()
    print(
        f"ours' first run, its caches of eigenbases empty, peaks at {cold.first_peak / MIB:.2f} "
        f"MiB at most ({cold.case.name})."
    )
    print(
        f"targets: ratio >= {RATIO_TARGET:.0f}x, max |dp| <= {AGREEMENT:.0e}, "
        f"{LARGEST} under {LARGEST_SECONDS * 1e3:.0f} ms on our side.\n"
        "ms: best warm run; MiB: tracemalloc peak of one run; ours in-process, theirs in the\n"
        "client's venv (FermionSimulator, SpinSimulator with spin N/2), neither sampling shots."
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
