"""A simulator served under a display name of the operator's choosing (`--backends lab=fermions`).

Without a stored config under that name, the simulator's own config is written there.
A stored config is served as it is (the spooler only stamps it), provided that the
simulator can keep every promise it makes: same kind of atoms, wire order and species,
no more wires, shots or experiments, and only gates and wire groups the simulator has.
Jobs are then held to the stored config's limits, not to the simulator's wider ones.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from pydantic import ValidationError

from storage_providers.schemas import BackendConfigIn

from .base import Backend

# What the spooler writes into the config itself each time it serves it.
SPOOLER_OWNED = ("last_queue_check", "pending_jobs", "sign", "kid")


class Unservable(ValueError):
    """A stored config the simulator cannot honour; str() is the one-line reason."""


def serve_as(simulator: Backend, display: str, stored: dict[str, Any] | None) -> Backend:
    """`simulator` under `display`, held to `stored` (the config stored there) if any."""
    backend = copy.copy(simulator)
    backend.display_name = display
    if stored is None:
        return backend
    config = _parse(display, stored)
    broken = broken_promise(simulator, config)
    if broken:
        raise Unservable(
            f"The stored config of {display} cannot be served by the "
            f"{simulator.display_name} simulator: {broken}."
        )
    backend.num_wires = config.num_wires
    backend.max_shots = config.max_shots
    backend.max_experiments = config.max_experiments
    backend.gates = tuple(
        dataclasses.replace(
            simulator.gate_specs[gate.name],
            coupling_map=tuple(tuple(sorted(wires)) for wires in gate.coupling_map),
        )
        for gate in config.gates
    )
    backend.gate_specs = {gate.name: gate for gate in backend.gates}
    backend.stored_config = {k: v for k, v in stored.items() if k not in SPOOLER_OWNED}
    return backend


def _parse(display: str, stored: dict[str, Any]) -> BackendConfigIn:
    try:
        config = BackendConfigIn.model_validate(stored)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise Unservable(
            f"The stored config of {display} is not a valid backend config: {where}: "
            f"{first['msg']}."
        ) from None
    if config.display_name != display:
        raise Unservable(
            f"The stored config of {display} has display_name {config.display_name!r}."
        )
    return config


def broken_promise(simulator: Backend, config: BackendConfigIn) -> str | None:
    """The first thing `config` promises that `simulator` cannot do, or None."""
    if not config.simulator:
        return "it describes hardware (simulator: false)"
    for field in ("cold_atom_type", "wire_order", "num_species"):
        theirs, ours = getattr(config, field), getattr(simulator, field)
        if theirs != ours:
            return f"{field} is {theirs!r}, the simulator's is {ours!r}"
    for field in ("num_wires", "max_shots", "max_experiments"):
        theirs, ours = getattr(config, field), getattr(simulator, field)
        if not 1 <= theirs <= ours:
            return f"{field} = {theirs} is outside 1..{ours}"
    known = simulator.supported_instructions()
    unknown = [name for name in config.supported_instructions if name not in known]
    if unknown:
        return f"the simulator has no instruction {', '.join(unknown)}"
    for gate in config.gates:
        spec = simulator.gate_specs.get(gate.name)
        if spec is None:
            return f"the simulator has no gate {gate.name}"
        for wires in gate.coupling_map:
            if tuple(sorted(wires)) not in spec.coupling_map:
                return f"gate {gate.name} cannot act on wires {sorted(wires)}"
    return None
