"""The sqooler 0.9.0 side of the interoperability tests; run it with the sqooler venv's python.

Usage: `python sqooler_side.py COMMAND` with a JSON object on stdin; the answer is one JSON
value on stdout (sqooler logs to stderr). Commands:

- `keypair` {kid}: a key pair from sqooler's own generator, and its `PRIVATE_JWK_STR`.
- `sign` {payload, private_jwk, datetime_keys?}: sqooler's envelope of `payload`; the
  top-level `datetime_keys` are parsed into datetimes first, as sqooler's models hold them.
- `verify` {envelope, public_jwk}: sqooler's verdict, `{"valid": bool}`.
- `spool` {base_path, provider, display_name, sign, private_jwk?, iterations}: publish the
  tiny backend's config (and public key) the way sqooler's deployments do, then run
  sqooler's own main loop for `iterations` looks at the queue.
- `sign_status` {base_path, provider, display_name, job_id, private_jwk}: replace a job's
  status by the INITIALIZING status sqooler writes when it signs statuses.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from math import sin
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqooler.schemes import (
    ExperimentalInputDict,
    ExperimentDict,
    GateInstruction,
    LocalLoginInformation,
)
from sqooler.security import JWK, JWSDict, create_jwk_pair, sign_payload
from sqooler.spoolers import Spooler, create_memory_data
from sqooler.storage_providers.base import datetime_handler
from sqooler.storage_providers.local import LocalProviderExtended
from sqooler.utils import main, update_backends

MAX_ATOMS = 500


class SpinExperiment(BaseModel):
    """The shape of one experiment on the tiny backend."""

    instructions: list
    num_wires: Annotated[int, Field(ge=1, le=1)]
    shots: Annotated[int, Field(ge=1, le=100)]
    wire_order: Literal["sequential", "interleaved"]
    seed: int | None = None


class LoadInstruction(BaseModel):
    """`load` [0] [N]: N atoms, none flipped."""

    name: Literal["load"]
    wires: Annotated[list[Annotated[int, Field(ge=0, le=0)]], Field(min_length=1, max_length=1)]
    params: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ATOMS)]], Field(min_length=1, max_length=1)
    ]


class MeasureInstruction(BaseModel):
    """`measure` [0]: the number of flipped atoms."""

    name: Literal["measure"]
    wires: Annotated[list[Annotated[int, Field(ge=0, le=0)]], Field(min_length=1, max_length=1)]
    params: Annotated[list[float], Field(max_length=0)]


class RlxInstruction(GateInstruction):
    """`rlx` [0] [θ]: a rotation about x; θ = π flips every atom."""

    name: Literal["rlx"] = "rlx"
    parameters: str = "omega"
    description: str = "Evolution under Lx"
    wires: Annotated[list[Annotated[int, Field(ge=0, le=0)]], Field(min_length=1, max_length=1)]
    params: Annotated[
        list[Annotated[float, Field(ge=0, le=6.3)]], Field(min_length=1, max_length=1)
    ]
    coupling_map: list = [[0]]


INSTRUCTIONS = {"load": LoadInstruction, "rlx": RlxInstruction, "measure": MeasureInstruction}


def run_spin_experiment(exp_name: str, exp: ExperimentalInputDict) -> ExperimentDict:
    """Deterministic physics is enough here: `measure` reports round(N sin²(θ/2))."""
    atoms, angle, measured = 0, 0.0, False
    for instruction in exp.instructions:
        if instruction.name == "load":
            atoms += int(instruction.params[0])
        elif instruction.name == "rlx":
            angle += instruction.params[0]
        elif instruction.name == "measure":
            measured = True
    flipped = round(atoms * sin(angle / 2) ** 2)
    shots = [[flipped] if measured else [] for _ in range(exp.shots)]
    return create_memory_data(shots, exp_name, exp.shots, exp.instructions)


def tiny_spooler(sign: bool) -> Spooler:
    """A one-wire spin backend written the way sqooler's documentation shows."""
    spooler = Spooler(
        ins_schema_dict=INSTRUCTIONS,
        device_config=SpinExperiment,
        n_wires=1,
        description="One wire of spins, for the interoperability tests.",
        n_max_shots=100,
        version="0.0.1",
        cold_atom_type="spin",
        n_max_experiments=5,
        wire_order="sequential",
        num_species=1,
        sign=sign,
    )
    spooler.gen_circuit = run_spin_experiment
    return spooler


def local_storage(request: dict[str, Any]) -> LocalProviderExtended:
    login = LocalLoginInformation(base_path=request["base_path"])
    return LocalProviderExtended(login, name=request["provider"])


def private_jwk(request: dict[str, Any]) -> JWK:
    jwk = JWK(**request["private_jwk"])
    # sqooler's spooler reads its key from this variable only
    os.environ["PRIVATE_JWK_STR"] = jwk.to_config_str()
    return jwk


def cmd_keypair(request: dict[str, Any]) -> Any:
    private, public = create_jwk_pair(kid=request["kid"])
    return {
        "private": json.loads(private.model_dump_json()),
        "public": json.loads(public.model_dump_json()),
        "config_str": private.to_config_str(),
    }


def cmd_sign(request: dict[str, Any]) -> Any:
    payload = dict(request["payload"])
    for key in request.get("datetime_keys", []):
        payload[key] = datetime.fromisoformat(payload[key])
    return sign_payload(payload, private_jwk(request)).model_dump()


def cmd_verify(request: dict[str, Any]) -> Any:
    envelope = JWSDict(**request["envelope"])
    return {"valid": envelope.verify_signature(JWK(**request["public_jwk"]))}


def cmd_spool(request: dict[str, Any]) -> Any:
    os.environ["T_WAIT_MAIN"] = "0"
    if request["sign"]:
        private_jwk(request)
    storage = local_storage(request)
    backends = {request["display_name"]: tiny_spooler(request["sign"])}
    update_backends(storage, backends)
    if request["iterations"]:
        main(storage, backends, num_iter=request["iterations"])
    return {"ok": True}


def cmd_sign_status(request: dict[str, Any]) -> Any:
    storage = local_storage(request)
    display_name, job_id = request["display_name"], request["job_id"]
    storage._delete_status(display_name, "", job_id)
    storage.upload_status(display_name, "", job_id, private_jwk=private_jwk(request))
    return {"ok": True}


COMMANDS = {
    "keypair": cmd_keypair,
    "sign": cmd_sign,
    "verify": cmd_verify,
    "spool": cmd_spool,
    "sign_status": cmd_sign_status,
}


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    answer = COMMANDS[sys.argv[1]](json.load(sys.stdin))
    json.dump(answer, sys.stdout, default=datetime_handler)
