"""Checks a job against the rules of a backend and turns each experiment into a `Circuit`.

Every rule a job can break ends in `JobRejected`, whose text names the experiment, the
instruction (index from 0, and name) and the rule, e.g.
`experiment_1, instruction 0 (load): N = 1000000000 is above the limit 500`.
Instructions are checked in the order they come; inside one instruction the order is:
name, wires in range, wire count or coupling map, parameter count, parameter values,
order on the wire (measured, touched by a gate, already loaded), resource limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

MAX_ANGLE = 2 * math.pi
# Tolerates rounding in angles computed by clients, e.g. 4 * (pi / 2).
_ANGLE_SLACK = 1e-9
NON_GATES = ("load", "measure", "barrier")


class JobRejected(Exception):
    """A job breaks a rule of its backend; str(exc) is the user-facing reason."""


class RuleBroken(Exception):
    """One rule broken inside an instruction; the caller adds where it happened."""


@dataclass(frozen=True)
class GateSpec:
    """A gate of a backend: what its config says and how many angles it takes."""

    name: str
    parameters: tuple[str, ...]
    description: str
    coupling_map: tuple[tuple[int, ...], ...]
    per: Literal["gate", "bond", "tweezer"] = "gate"

    def param_count(self, wires: Sequence[int]) -> int:
        """Angles this gate takes on `wires`: fixed, or one per bond / tweezer of the run."""
        if self.per == "bond":
            return len(wires) // 2 - 1
        if self.per == "tweezer":
            return len(wires) // 2
        return len(self.parameters)

    def config(self) -> dict[str, Any]:
        """The gate object of the backend config, restricted to the keys qiskit accepts."""
        return {
            "name": self.name,
            "parameters": list(self.parameters),
            "qasm_def": f"gate {self.name}({','.join(self.parameters)}) {{}}",
            "coupling_map": [list(wires) for wires in self.coupling_map],
            "description": self.description,
        }


@dataclass(frozen=True)
class Operation:
    """One gate to simulate, its wires sorted as the coupling map lists them."""

    name: str
    wires: tuple[int, ...]
    params: tuple[float, ...]


@dataclass
class Circuit:
    """One validated experiment: what is loaded, the gates in order, the wires measured."""

    name: str
    shots: int
    seed: int | None
    instructions: list[list[Any]]
    loads: dict[int, int] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    measured: list[int] = field(default_factory=list)


class BackendRules(Protocol):
    """What validation needs to know about a backend."""

    @property
    def num_wires(self) -> int: ...
    @property
    def max_shots(self) -> int: ...
    @property
    def max_experiments(self) -> int: ...
    @property
    def gate_specs(self) -> Mapping[str, GateSpec]: ...
    @property
    def already_loaded(self) -> str:
        """The rule broken by a second load on a wire, with a {wire} field."""
        ...

    def supported_instructions(self) -> list[str]: ...

    def load_amount(self, params: Sequence[float]) -> int:
        """Atoms a `load` with these parameters puts on its wire; RuleBroken if it cannot."""
        ...

    def check_loads(self, loads: Mapping[int, int]) -> None:
        """Raise RuleBroken when the atoms loaded so far exceed what can be simulated."""
        ...


Wire = StrictInt
Angle = Annotated[float, Field(strict=True, allow_inf_nan=False)]
RawInstruction = tuple[StrictStr, list[Wire], list[Angle]]


class ExperimentIn(BaseModel):
    """The shape of one experiment of a job (SPEC §3); extra keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    num_wires: StrictInt
    shots: StrictInt
    wire_order: Literal["sequential", "interleaved"] | None = None
    seed: StrictInt | None = None
    instructions: list[RawInstruction]


_FIELD_RULES = {
    "num_wires": "num_wires must be a whole number",
    "shots": "shots must be a whole number",
    "wire_order": 'wire_order must be "sequential" or "interleaved"',
    "seed": "seed must be a whole number",
    "instructions": "instructions must be a list",
}
_PART_RULES: dict[int | str | None, str] = {
    1: "wires must be a list of whole numbers",
    2: "parameters must be a list of finite numbers",
}
_INSTRUCTION_SHAPE = "an instruction must be [name, [wires], [params]]"


def fmt_number(value: float) -> str:
    """Show a number as a user typed it: 10.0 as 10, 10.5 as 10.5."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def parse_job(job: object, rules: BackendRules) -> list[Circuit]:
    """Check the whole job and return its experiments in key order, or raise JobRejected."""
    if not isinstance(job, Mapping):
        raise JobRejected("the job must be a JSON object mapping experiment names to experiments")
    if not job:
        raise JobRejected("the job holds no experiments")
    names = list(job)
    if len(names) > rules.max_experiments:
        raise JobRejected(
            f"{names[rules.max_experiments]}: the job holds {len(names)} experiments, "
            f"above the limit {rules.max_experiments}"
        )
    return [parse_experiment(str(name), job[name], rules) for name in names]


def parse_experiment(name: str, raw: object, rules: BackendRules) -> Circuit:
    """Check one experiment and turn it into a Circuit, or raise JobRejected."""
    try:
        experiment = ExperimentIn.model_validate(raw)
    except ValidationError as error:
        raise JobRejected(_shape_message(name, raw, error)) from None
    _check_limits(name, experiment, rules)
    as_sent = cast(Mapping[str, Any], raw)["instructions"]  # echoed unchanged: 10 stays 10
    circuit = Circuit(
        name=name,
        shots=experiment.shots,
        seed=experiment.seed,
        instructions=[[n, list(w), list(p)] for n, w, p in as_sent],
    )
    checker = _WireBook(rules, experiment.num_wires, circuit)
    for index, (op_name, wires, params) in enumerate(experiment.instructions):
        try:
            checker.add(op_name, wires, params)
        except RuleBroken as broken:
            raise JobRejected(f"{name}, instruction {index} ({op_name}): {broken}") from None
    circuit.measured.sort()
    return circuit


def _check_limits(name: str, experiment: ExperimentIn, rules: BackendRules) -> None:
    """Experiment-level limits: width, shots, seed."""
    for key, value, low, high in (
        ("num_wires", experiment.num_wires, 1, rules.num_wires),
        ("shots", experiment.shots, 1, rules.max_shots),
    ):
        if value < low:
            raise JobRejected(f"{name}: {key} = {value} is below the minimum {low}")
        if value > high:
            raise JobRejected(f"{name}: {key} = {value} is above the limit {high}")
    if experiment.seed is not None and experiment.seed < 0:
        raise JobRejected(f"{name}: seed = {experiment.seed} is below the minimum 0")


def _shape_message(name: str, raw: object, error: ValidationError) -> str:
    """Turn the first pydantic error into one readable sentence naming where it is."""
    first = error.errors()[0]
    loc = first["loc"]
    if not loc:
        return f"{name}: an experiment must be an object with instructions, num_wires and shots"
    if loc[0] != "instructions" or len(loc) < 2:
        if first["type"] == "missing":
            return f"{name}: {loc[0]} is missing"
        return f"{name}: {_FIELD_RULES[str(loc[0])]}"
    index = loc[1]
    instruction = cast(Mapping[str, Any], raw)["instructions"][index]  # it is a list: loc says so
    where = f"{name}, instruction {index}"
    if isinstance(instruction, list | tuple) and instruction and isinstance(instruction[0], str):
        where += f" ({instruction[0]})"
    part = loc[2] if len(loc) > 2 and first["type"] not in ("missing", "too_long") else None
    return f"{where}: {_PART_RULES.get(part, _INSTRUCTION_SHAPE)}"


class _WireBook:
    """Follows what has happened on each wire, to refuse instructions in a wrong order."""

    def __init__(self, rules: BackendRules, num_wires: int, circuit: Circuit) -> None:
        self.rules = rules
        self.num_wires = num_wires
        self.circuit = circuit
        self.touched: set[int] = set()
        self.measured: set[int] = set()

    def add(self, name: str, wires: list[int], params: list[float]) -> None:
        """Check one instruction and record it."""
        spec = self.rules.gate_specs.get(name)
        if spec is None and name not in NON_GATES:
            known = ", ".join(self.rules.supported_instructions())
            raise RuleBroken(f"unknown instruction; this backend supports {known}")
        for wire in wires:
            if not 0 <= wire < self.num_wires:
                raise RuleBroken(f"wire {wire} is out of range: num_wires is {self.num_wires}")
        if spec is not None:
            self._gate(spec, wires, params)
        elif name == "load":
            self._load(wires, params)
        elif name == "measure":
            self._measure(wires, params)
        else:
            _expect_params(params, 0)  # barrier: a no-op on any wires

    def _gate(self, spec: GateSpec, wires: list[int], params: list[float]) -> None:
        ordered = tuple(sorted(wires))
        if ordered not in spec.coupling_map:
            allowed = [list(entry) for entry in spec.coupling_map]
            raise RuleBroken(f"wires {sorted(wires)} are not in the coupling map {allowed}")
        count = spec.param_count(ordered)
        per = {"gate": "", "bond": " (one per bond)", "tweezer": " (one per tweezer)"}[spec.per]
        _expect_params(params, count, per)
        for position, angle in enumerate(params):
            if abs(angle) > MAX_ANGLE + _ANGLE_SLACK:
                raise RuleBroken(
                    f"parameter {position} = {fmt_number(angle)} is outside the range [-2π, 2π]"
                )
        for wire in ordered:
            if wire in self.measured:
                raise RuleBroken(
                    f"wire {wire} was already measured; gates after a measurement are refused"
                )
        self.touched.update(ordered)
        self.circuit.operations.append(Operation(spec.name, ordered, tuple(params)))

    def _load(self, wires: list[int], params: list[float]) -> None:
        _expect_wires(wires)
        wire = wires[0]
        loads = self.circuit.loads
        amount = self.rules.load_amount(params)
        if wire in self.measured:
            raise RuleBroken(f"wire {wire} was already measured; load comes first")
        if wire in self.touched:
            raise RuleBroken(f"wire {wire} was already touched by a gate; load comes first")
        if wire in loads:
            raise RuleBroken(self.rules.already_loaded.format(wire=wire))
        loads[wire] = amount
        self.rules.check_loads(loads)

    def _measure(self, wires: list[int], params: list[float]) -> None:
        _expect_wires(wires)
        _expect_params(params, 0)
        if wires[0] not in self.measured:  # measuring twice reads the same outcome once
            self.measured.add(wires[0])
            self.circuit.measured.append(wires[0])


def _expect_wires(wires: list[int]) -> None:
    if len(wires) != 1:
        raise RuleBroken(f"takes exactly 1 wire, got {len(wires)}")


def _expect_params(params: list[float], count: int, per: str = "") -> None:
    if len(params) != count:
        wanted = {0: "no parameters", 1: "1 parameter"}.get(count, f"{count} parameters")
        raise RuleBroken(f"takes {wanted}{per}, got {len(params)}")
