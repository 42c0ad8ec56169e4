"""The workflow every built-in simulator shares: config, validation, sampling, result."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .validation import NON_GATES, Circuit, GateSpec, parse_job

Probabilities = npt.NDArray[np.float64]

# Probabilities this small are rounding noise of an exact evolution (norm 1 within ~1e-15);
# with at most 10,000 shots they would show up once in 10^10 jobs, so they are dropped.
NEGLIGIBLE = 1e-14

Checkpoint = Callable[[], None]


class JobCancelled(Exception):
    """Raised by a checkpoint between experiments: the job's owner cancelled it."""


class Backend:
    """A built-in simulator; subclasses say how loads are counted and what a circuit yields."""

    cold_atom_type: ClassVar[str]
    wire_order: ClassVar[str]
    num_species: ClassVar[int]
    already_loaded: ClassVar[str]
    version: ClassVar[str] = "1.0.0"
    # Instance attributes with class defaults: a backend served under a stored config
    # (serving.serve_as) is held to that config's limits.
    max_experiments: int = 50
    max_shots: int = 10_000
    stored_config: dict[str, Any] | None = None

    def __init__(
        self, *, display_name: str, description: str, num_wires: int, gates: Sequence[GateSpec]
    ) -> None:
        self.display_name = display_name
        self.description = description
        self.num_wires = num_wires
        self.gates = tuple(gates)
        self.gate_specs: Mapping[str, GateSpec] = {gate.name: gate for gate in self.gates}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display_name}>"

    def supported_instructions(self) -> list[str]:
        """Gate names, then the instructions every backend understands."""
        return [*self.gate_specs, *NON_GATES]

    def config(self) -> dict[str, Any]:
        """The backend config as stored (SPEC §3), without what the worker stamps on it."""
        if self.stored_config is not None:
            return dict(self.stored_config)
        return {
            "description": self.description,
            "version": self.version,
            "display_name": self.display_name,
            "cold_atom_type": self.cold_atom_type,
            "gates": [gate.config() for gate in self.gates],
            "max_experiments": self.max_experiments,
            "max_shots": self.max_shots,
            "simulator": True,
            "supported_instructions": self.supported_instructions(),
            "num_wires": self.num_wires,
            "wire_order": self.wire_order,
            "num_species": self.num_species,
        }

    def run(
        self, job: object, *, job_id: str, checkpoint: Checkpoint | None = None
    ) -> dict[str, Any]:
        """Validate the whole job (JobRejected on any broken rule), then simulate it.

        `checkpoint` is called before each experiment; it stops the job by raising
        (JobCancelled when its owner cancelled it).
        """
        circuits = parse_job(job, self)
        results = []
        for circuit in circuits:
            if checkpoint is not None:
                checkpoint()
            results.append(self._experiment_result(circuit))
        return {
            "display_name": self.display_name,
            "backend_version": self.version,
            "job_id": job_id,
            "qobj_id": None,
            "success": True,
            "status": "DONE",
            "header": {},
            "results": results,
        }

    def _experiment_result(self, circuit: Circuit) -> dict[str, Any]:
        if circuit.measured:
            labels, probabilities = self.distribution(circuit)
        else:
            labels, probabilities = [""], np.ones(1)
        memory, counts = sample(labels, probabilities, shots=circuit.shots, seed=circuit.seed)
        return {
            "header": {"name": circuit.name},
            "shots": circuit.shots,
            "success": True,
            "data": {
                "memory": memory,
                "counts": counts,
                # as objects: sqooler's result schema (and the replaced service) reads them so
                "instructions": [
                    {"name": name, "wires": wires, "params": params}
                    for name, wires, params in circuit.instructions
                ],
            },
        }

    def load_amount(self, params: Sequence[float]) -> int:
        """Atoms a `load` with these parameters puts on its wire; RuleBroken if it cannot."""
        raise NotImplementedError

    def check_loads(self, loads: Mapping[int, int]) -> None:
        """Raise RuleBroken when the atoms loaded so far exceed what can be simulated."""

    def distribution(self, circuit: Circuit) -> tuple[list[str], Probabilities]:
        """Outcomes of the measured wires that can occur, as memory strings, and their odds."""
        raise NotImplementedError


def sample(
    labels: list[str], probabilities: Probabilities, *, shots: int, seed: int | None
) -> tuple[list[str], dict[str, int]]:
    """Draw `shots` outcomes: the memory and its counts; a certain outcome needs no randomness."""
    if len(labels) == 1:
        return [labels[0]] * shots, {labels[0]: shots}
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(labels), size=shots, p=probabilities / probabilities.sum())
    memory: list[str] = np.array(labels, dtype=object)[picks].tolist()
    tally = np.bincount(picks, minlength=len(labels)).tolist()
    counts = {label: count for label, count in zip(labels, tally, strict=True) if count}
    return memory, counts
