"""The sqooler 0.9.0 side of the interoperability tests; run it with the sqooler venv's python.

Usage: `python sqooler_side.py COMMAND` with a JSON object on stdin; the answer is one JSON
value on stdout (sqooler logs to stderr). Commands:

- `keypair` {kid}: a key pair from sqooler's own generator, and its `PRIVATE_JWK_STR`.
- `sign` {payload, private_jwk, datetime_keys?}: sqooler's envelope of `payload`; the
  top-level `datetime_keys` are parsed into datetimes first, as sqooler's models hold them.
- `verify` {envelope, public_jwk}: sqooler's verdict, `{"valid": bool}`.
- `spool` {STORAGE, display_name, sign, private_jwk?, iterations}: publish the tiny
  backend's config (and public key) the way sqooler's deployments do, then run sqooler's
  own main loop for `iterations` looks at the queue. Answers `config_valid`: sqooler's
  verdict on the stored signed config before and after (null while there is none, or
  while it is plain).
- `sign_status` {STORAGE, display_name, job_id, private_jwk}: replace a job's status by
  the INITIALIZING status sqooler writes when it signs statuses. (On Dropbox sqooler's
  `_delete_status` removes the whole `None` folder, every status of the backend: use it
  with one job at a time.)
- `queue_jobs` {STORAGE, display_name, username, jobs}: queue each job with sqooler's own
  `upload_job` (its `uuid4().hex[:24]` ids) and write its initial status; answers
  `[{job_id, status}]`.
- `read_back` {STORAGE, display_name, job_ids, verify}: what sqooler's provider reads:
  the backend list, the backend's served config and status, and per job its status,
  its result (or `{"refused": [reasons]}` when sqooler's `ResultDict` rejects the
  document) and, with `verify`, sqooler's verdict on a DONE job's signed result.

STORAGE is `base_path` (a local folder), `mongodb` {uri, username, password} (the test
server) or `dropbox` {app_key, app_secret, refresh_token} (the Dropbox double), each with
`provider` (the provider's name). sqooler's Mongo provider always builds a
`mongodb+srv://` URI from its login, which cannot reach a loopback server: its
`MongoClient` is replaced by one that connects to `uri` instead, with the same
credentials, so that only the address differs from a lab's deployment. sqooler's
Dropbox provider is used as it is: the `dropbox` SDK reaches the double through the
DROPBOX_API_HOST, DROPBOX_API_CONTENT_HOST and REQUESTS_CA_BUNDLE this process inherits.

sqooler prints some of its complaints (a queue folder that does not exist yet, on
Dropbox): while a command runs, stdout goes to stderr, so that stdout holds the answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from datetime import UTC, datetime
from math import sin
from typing import Annotated, Any, Literal

import pymongo
from bson.codec_options import CodecOptions
from pydantic import BaseModel, Field, ValidationError
from sqooler.schemes import (
    DropboxLoginInformation,
    ExperimentalInputDict,
    ExperimentDict,
    GateInstruction,
    LocalLoginInformation,
    MongodbLoginInformation,
)
from sqooler.security import JWK, JWSDict, create_jwk_pair, sign_payload
from sqooler.spoolers import Spooler, create_memory_data
from sqooler.storage_providers import mongodb as sqooler_mongodb
from sqooler.storage_providers.base import StorageProvider, datetime_handler
from sqooler.storage_providers.dropbox import DropboxProviderExtended
from sqooler.storage_providers.local import LocalProviderExtended
from sqooler.storage_providers.mongodb import MongodbProviderExtended
from sqooler.utils import main, update_backends

MAX_ATOMS = 500
LAB_HOST = "cluster0.lab.example.net"  # what a lab's login holds; never resolved


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


def storage(request: dict[str, Any]) -> StorageProvider:
    """sqooler's provider of the request: MongoDB or Dropbox when it names one, else a folder."""
    if "mongodb" in request:
        return mongodb_storage(request["mongodb"], request["provider"])
    if "dropbox" in request:
        dropbox_login = DropboxLoginInformation(**request["dropbox"])
        return DropboxProviderExtended(dropbox_login, name=request["provider"])
    login = LocalLoginInformation(base_path=request["base_path"])
    return LocalProviderExtended(login, name=request["provider"])


def mongodb_storage(server: dict[str, str], name: str) -> MongodbProviderExtended:
    """sqooler's Mongo provider with a lab's login, its client redirected to the test server."""

    def client_of_test_server(uri: str) -> pymongo.MongoClient:
        expected = f"mongodb+srv://{server['username']}:{server['password']}@{LAB_HOST}/"
        if not uri.startswith(expected):
            raise AssertionError("sqooler built an unexpected URI")
        return pymongo.MongoClient(
            server["uri"],
            username=server["username"],
            password=server["password"],
            serverSelectionTimeoutMS=5000,
        )

    sqooler_mongodb.MongoClient = client_of_test_server
    login = MongodbLoginInformation(
        mongodb_username=server["username"],
        mongodb_password=server["password"],
        mongodb_database_url=LAB_HOST,
    )
    return MongodbProviderExtended(login, name=name)


def stored_config(provider: StorageProvider, display_name: str) -> dict[str, Any] | None:
    """The config document as stored, read the way sqooler reads one it re-signs."""
    if isinstance(provider, MongodbProviderExtended):
        _, collection = provider._get_database_and_collection(provider.configs_path)
        # sqooler's update_config reads dates time-zone-aware before it checks a signature
        aware = collection.with_options(CodecOptions(tz_aware=True, tzinfo=UTC))
        found = aware.find_one(
            {"$or": [{"display_name": display_name}, {"payload.display_name": display_name}]}
        )
        if found is not None:
            found.pop("_id")
        return found
    folder = provider.get_attribute_path("configs", display_name=display_name)
    name = provider.get_attribute_id("configs", job_id="", display_name=display_name)
    try:
        return provider.get(folder, name)
    except FileNotFoundError:
        return None


def config_verdict(provider: StorageProvider, display_name: str) -> bool | None:
    """sqooler's verdict on the stored config: None when there is none or it is plain."""
    config = stored_config(provider, display_name)
    if config is None or set(config) != {"header", "payload", "signature"}:
        return None
    return JWSDict(**config).verify_signature(provider.get_public_key(display_name))


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
    provider, display_name = storage(request), request["display_name"]
    before = config_verdict(provider, display_name)
    backends = {display_name: tiny_spooler(request["sign"])}
    update_backends(provider, backends)
    if request["iterations"]:
        main(provider, backends, num_iter=request["iterations"])
    return {"config_valid": [before, config_verdict(provider, display_name)]}


def cmd_sign_status(request: dict[str, Any]) -> Any:
    provider = storage(request)
    display_name, job_id = request["display_name"], request["job_id"]
    provider._delete_status(display_name, "", job_id)
    provider.upload_status(display_name, "", job_id, private_jwk=private_jwk(request))
    return {"ok": True}


def cmd_queue_jobs(request: dict[str, Any]) -> Any:
    provider = storage(request)
    display_name, username = request["display_name"], request["username"]
    queued = []
    for job in request["jobs"]:
        job_id = provider.upload_job(job, display_name, username)
        status = provider.upload_status(display_name, username, job_id)
        queued.append({"job_id": job_id, "status": status.model_dump()})
    return queued


def cmd_read_back(request: dict[str, Any]) -> Any:
    provider, display_name = storage(request), request["display_name"]
    jobs = {}
    for job_id in request["job_ids"]:
        status = provider.get_status(display_name, "", job_id)
        verified = None  # only a result that exists can be verified
        if request["verify"] and status.status == "DONE":
            verified = provider.verify_result(display_name, job_id)
        jobs[job_id] = {
            "status": status.model_dump(),
            "result": typed_result(provider, display_name, job_id),
            "verified": verified,
        }
    return {
        "backends": provider.get_backends(),
        "config": provider.get_backend_dict(display_name).model_dump(),
        "backend_status": provider.get_backend_status(display_name).model_dump(),
        "jobs": jobs,
    }


def typed_result(provider: StorageProvider, display_name: str, job_id: str) -> dict[str, Any]:
    """sqooler's `get_result`, or why its `ResultDict` refuses the stored document."""
    try:
        return provider.get_result(display_name, "", job_id).model_dump()
    except ValidationError as refused:
        reasons = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in refused.errors()]
        return {"refused": reasons}


COMMANDS = {
    "keypair": cmd_keypair,
    "sign": cmd_sign,
    "verify": cmd_verify,
    "spool": cmd_spool,
    "sign_status": cmd_sign_status,
    "queue_jobs": cmd_queue_jobs,
    "read_back": cmd_read_back,
}


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    with contextlib.redirect_stdout(sys.stderr):
        answer = COMMANDS[sys.argv[1]](json.load(sys.stdin))
    json.dump(answer, sys.stdout, default=datetime_handler)
