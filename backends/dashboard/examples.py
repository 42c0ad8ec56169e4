"""Example jobs for a backend, made from its config so that every backend has some.

Each example loads atoms, applies at most one of the backend's gates on the first wires
its coupling map allows, and measures every wire: a job the spooler accepts.
"""

from __future__ import annotations

import json
import math

from storage_providers.schemas import BackendConfigIn

SHOTS = 100
ATOMS = 10  # on spin backends, `load` takes a number of atoms


def _load(config: BackendConfigIn, wire: int) -> list:
    if config.cold_atom_type == "fermion":
        return ["load", [wire], []]
    return ["load", [wire], [ATOMS]]


def _experiment(config: BackendConfigIn, instructions: list) -> dict:
    return {
        "instructions": instructions,
        "num_wires": config.num_wires,
        "shots": min(SHOTS, config.max_shots),
        "wire_order": config.wire_order,
    }


def _measure_all(config: BackendConfigIn) -> list[list]:
    return [["measure", [wire], []] for wire in range(config.num_wires)]


def examples(config: BackendConfigIn) -> dict[str, str]:
    """Example title → job JSON, for the Submit page."""
    found = {"Load and measure": [_load(config, 0), *_measure_all(config)]}
    for gate in config.gates:
        if not gate.coupling_map or gate.name not in config.supported_instructions:
            continue
        wires = list(gate.coupling_map[0])
        angles = [math.pi / 2] * len(gate.parameters)
        found[f"One {gate.name} gate"] = [
            _load(config, wires[0]),
            [gate.name, wires, angles],
            *_measure_all(config),
        ]
    return {
        title: readable({"experiment_0": _experiment(config, instructions)})
        for title, instructions in found.items()
    }


def readable(job: dict) -> str:
    """A job as JSON to read and edit: one line per instruction, one per experiment key."""
    experiments = []
    for name, experiment in job.items():
        fields = []
        for key, value in experiment.items():
            if key == "instructions" and isinstance(value, list) and value:
                lines = ",\n".join(f"      {json.dumps(i)}" for i in value)
                fields.append(f'    "instructions": [\n{lines}\n    ]')
            else:
                fields.append(f"    {json.dumps(key)}: {json.dumps(value)}")
        experiments.append(f"  {json.dumps(name)}: {{\n" + ",\n".join(fields) + "\n  }")
    return "{\n" + ",\n".join(experiments) + "\n}"
