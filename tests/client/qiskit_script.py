"""Do what a qiskit-cold-atom user does against qlued; run it with the qiskit venv's python.

    python qiskit_script.py run --url http://host:port [--token T] [--username U]
    python qiskit_script.py configs --url http://host:port [--token T] [--backends a,b]

`--url` is the service root. QLUED_URL, QLUED_TOKEN and QLUED_USERNAME stand in for the
flags (a token in the environment stays out of `ps`). `run` sends circuits to the fermions
and singlequdit simulators and checks their physics and the job's life; `configs` checks
that every served configuration satisfies the client. Each check prints what it saw; the
exit code is 0 only when all of them hold.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests
from qiskit import QuantumCircuit
from qiskit.circuit import Gate
from qiskit.providers import JobError, JobStatus, JobTimeoutError
from qiskit.providers.models import BackendConfiguration
from qiskit_cold_atom.circuit_tools import CircuitTools, WireOrder
from qiskit_cold_atom.fermions.fermion_gate_library import Hop, Interaction, Phase
from qiskit_cold_atom.providers import ColdAtomProvider
from qiskit_cold_atom.providers.remote_backend import RemoteBackend
from qiskit_cold_atom.spins.spins_gate_library import (
    RLXGate,
    RLXLYGate,
    RLYGate,
    RLZ2Gate,
    RLZGate,
    RLZLZGate,
)

MOUNT = "/api/qiskit-cold-atom"
FERMIONS = "alqor_fermions_simulator"
SINGLEQUDIT = "alqor_singlequdit_simulator"
MULTIQUDIT = "alqor_multiqudit_simulator"
SHOTS = 50
ATOMS = 7
TOO_MANY_ATOMS = 1000  # SPEC §9: at most 500 atoms
TOO_LARGE_ANGLE = 7.0  # SPEC §9: angles lie in [-2π, 2π]
POLL_SECONDS = 0.5
RESULT_TIMEOUT = 60.0  # the simulators answer in well under a second
HTTP_TIMEOUT = 30.0
NOT_FAILED = {JobStatus.INITIALIZING, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE}
GATE_KEYS = {
    "name",
    "parameters",
    "qasm_def",
    "coupling_map",
    "latency_map",
    "conditional",
    "description",
}
ANGLE = 0.1
GATES: dict[str, Callable[[int], Gate]] = {
    "fhop": lambda modes: Hop(modes, [ANGLE] * (modes // 2 - 1)),
    "fint": lambda modes: Interaction(modes, ANGLE),
    "fphase": lambda modes: Phase(modes, [ANGLE] * (modes // 2)),
    "rlx": lambda _: RLXGate(ANGLE),
    "rly": lambda _: RLYGate(ANGLE),
    "rlz": lambda _: RLZGate(ANGLE),
    "rlz2": lambda _: RLZ2Gate(ANGLE),
    "rlzlz": lambda _: RLZLZGate(ANGLE),
    "rlxly": lambda _: RLXLYGate(ANGLE),
}


class Report:
    """Prints every check with what it saw and remembers the ones that failed."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.failures: list[str] = []

    def check(self, what: str, holds: bool, saw: object) -> bool:
        seen = str(saw).replace(self.secret, "<token>") if self.secret else str(saw)
        print(f"{'ok  ' if holds else 'FAIL'} {what}: {seen}", flush=True)
        if not holds:
            self.failures.append(what)
        return holds

    def attempt(self, what: str, step: Callable[[], None]) -> None:
        """Run one scenario; an exception fails it without stopping the others."""
        try:
            step()
        except Exception as exc:
            self.check(what, False, f"raised {type(exc).__name__}: {exc}")


def backend_url(base: str, name: str) -> str:
    """The URL a user registers for a backend: the compatibility mount, no trailing slash."""
    return f"{base}{MOUNT}/{name}"


def noted_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """The client's own warnings (it reports unreachable backends only this way)."""
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def saved_account(args: argparse.Namespace, urls: list[str], report: Report) -> ColdAtomProvider:
    """Save the account as the client's docs say, in a throwaway credentials file, and load it."""
    with tempfile.TemporaryDirectory() as home:
        credentials = str(Path(home) / ".qiskit" / "cold_atom_credentials.conf")
        ColdAtomProvider.save_account(
            url=urls, username=args.username, token=args.token, overwrite=True, filename=credentials
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            provider = ColdAtomProvider.load_account(filename=credentials)
    remote = remote_names(provider)
    report.check("provider found the remote backends", remote == sorted(_names(urls)), remote)
    for message in noted_warnings(caught):
        report.check("provider warned", False, message)
    return provider


def enabled_account(args: argparse.Namespace, urls: list[str]) -> ColdAtomProvider:
    """The provider of `enable_account`, which keeps the credentials in memory only."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        provider = ColdAtomProvider.enable_account(
            url=urls, username=args.username, token=args.token
        )
    for message in noted_warnings(caught):
        print(f"warning from the client: {message}", flush=True)
    return provider


def _names(urls: list[str]) -> list[str]:
    return [url.rstrip("/").rsplit("/", 1)[-1] for url in urls]


def remote_names(provider: ColdAtomProvider) -> list[str]:
    """The backends the provider reached over HTTP (it also lists its local simulators)."""
    return sorted(b.name() for b in provider.backends() if isinstance(b, RemoteBackend))


def spin_circuit(atoms: int, angle: float | None) -> QuantumCircuit:
    """Load atoms on the single wire, rotate them about x when an angle is given, measure."""
    circuit = QuantumCircuit(1)
    circuit.load_spins(atoms, 0)
    if angle is not None:
        circuit.rlx(angle, 0)
    circuit.measure_all()
    return circuit


def fermion_circuit(angle: float, backend: Any) -> QuantumCircuit:
    """One fermion per spin in tweezer 0, a hop between tweezers 0 and 1, measure all."""
    circuit = backend.initialize_circuit([[1, 0, 0, 0], [1, 0, 0, 0]])
    circuit.fhop([angle], [0, 1, 4, 5])  # sequential wires: up 0, up 1, down 0, down 1
    circuit.measure_all()
    return circuit


def finished(report: Report, label: str, job: Any) -> Any:
    """Check the job's status before and after `result()`, and return the result."""
    before = job.status()
    report.check(f"{label}: status right after run", before in NOT_FAILED, before.name)
    result = job.result(timeout=RESULT_TIMEOUT, wait=POLL_SECONDS)
    after = job.status()
    report.check(f"{label}: status after result()", after == JobStatus.DONE, after.name)
    names = (result.job_id, result.backend_name, result.success)
    expected = (job.job_id(), job.backend().name(), True)
    report.check(f"{label}: result's job_id, backend_name, success", names == expected, names)
    return result


def fermions_hop(provider: ColdAtomProvider, report: Report) -> None:
    backend = provider.get_backend(FERMIONS)
    job = backend.run(fermion_circuit(np.pi / 2, backend), shots=SHOTS)
    print(f"fermions: job {job.job_id()}", flush=True)
    counts = dict(finished(report, "fermions", job).get_counts())
    # interleaved wires: up 0, down 0, up 1, down 1, ...; the circuit's order would be 01000100
    expected = {"0 0 1 1 0 0 0 0": SHOTS}
    report.check(
        "fermions: fhop(pi/2) moves both fermions to tweezer 1", counts == expected, counts
    )
    retrieved = backend.retrieve_job(job.job_id())
    again = dict(retrieved.result(timeout=RESULT_TIMEOUT, wait=POLL_SECONDS).get_counts())
    report.check("fermions: retrieve_job gives the same counts", again == counts, again)


def singlequdit_flip(provider: ColdAtomProvider, report: Report) -> None:
    backend = provider.get_backend(SINGLEQUDIT)
    circuits = [spin_circuit(ATOMS, np.pi), spin_circuit(ATOMS, None)]
    job = backend.run(circuits, shots=SHOTS)
    print(f"singlequdit: job {job.job_id()}", flush=True)
    counts = [dict(c) for c in finished(report, "singlequdit", job).get_counts()]
    expected = [{str(ATOMS): SHOTS}, {"0": SHOTS}]
    what = f"singlequdit: load {ATOMS} then rlx(pi) flips all, without it none"
    report.check(what, counts == expected, counts)


def refused(report: Report, label: str, job: Any, reason: str) -> None:
    """A job the spooler refuses: result() stops with an error, status() and its message say why."""
    print(f"{label}: job {job.job_id()}", flush=True)
    what = f"{label}: result() stops with JobError"
    try:
        job.result(timeout=RESULT_TIMEOUT, wait=POLL_SECONDS)
    except JobTimeoutError:  # a JobError too: the client would have polled forever
        report.check(what, False, f"still polling after {RESULT_TIMEOUT:.0f} s")
    except JobError as exc:
        report.check(what, True, exc.message.split("returned error:")[-1].strip())
    else:
        report.check(what, False, "it returned a result")
    status = job.status()
    report.check(f"{label}: status()", status == JobStatus.ERROR, status.name)
    message = job.error_message()
    report.check(f"{label}: error_message() names the reason", reason in str(message), message)


def rejected_load(provider: ColdAtomProvider, report: Report) -> None:
    job = provider.get_backend(SINGLEQUDIT).run(spin_circuit(TOO_MANY_ATOMS, np.pi), shots=SHOTS)
    refused(report, "too many atoms", job, "experiment_0, instruction 0 (load)")


def rejected_angle(provider: ColdAtomProvider, report: Report) -> None:
    backend = provider.get_backend(FERMIONS)
    job = backend.run(fermion_circuit(TOO_LARGE_ANGLE, backend), shots=SHOTS)
    refused(report, "too large an angle", job, "experiment_0, instruction 2 (fhop)")


def run_jobs(args: argparse.Namespace, report: Report) -> None:
    urls = [backend_url(args.url, name) for name in (FERMIONS, SINGLEQUDIT)]
    provider = saved_account(args, urls, report)
    for scenario in (fermions_hop, singlequdit_flip, rejected_load, rejected_angle):
        report.attempt(scenario.__name__, lambda s=scenario: s(provider, report))


def served_config(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """GET get_config the way the client does (credentials as query parameters)."""
    params = {"username": args.username, "token": args.token}
    answer = requests.get(f"{url}/get_config", params=params, timeout=HTTP_TIMEOUT)
    answer.raise_for_status()
    return answer.json()


def fitting_config(args: argparse.Namespace, report: Report, name: str, url: str) -> dict[str, Any]:
    """The served config, after checking the fields the client and qiskit rely on."""
    config = served_config(args, url)
    report.check(
        f"{name}: backend_name", config.get("backend_name") == name, config.get("backend_name")
    )
    qiskit_config = BackendConfiguration.from_dict(config)
    report.check(f"{name}: BackendConfiguration.from_dict", True, type(qiskit_config).__name__)
    kind = config.get("cold_atom_type")
    report.check(
        f"{name}: cold_atom_type is one the client builds", kind in {"fermion", "spin"}, kind
    )
    report.check(f"{name}: url is the mount's", config.get("url") == f"{url}/", config.get("url"))
    supported = set(config.get("supported_instructions", []))
    for gate in config["gates"]:
        extra = set(gate) - GATE_KEYS
        couplings = gate.get("coupling_map") or []
        fits = (
            not extra
            and bool(couplings)
            and all(list(wires) == sorted(wires) for wires in couplings)
            and gate["name"] in supported
        )
        saw = f"{len(couplings)} couplings, extra keys {sorted(extra)}"
        report.check(f"{name}: gate {gate['name']} fits GateConfig and the client", fits, saw)
    basics = {"load", "measure", "barrier"}
    report.check(
        f"{name}: load, measure, barrier supported", basics <= supported, sorted(supported)
    )
    return config


def gate_payloads(report: Report, backend: Any, config: dict[str, Any]) -> None:
    """Every coupling of every gate passes CircuitTools and is sent on exactly those wires."""
    wires_total, species = config["n_qubits"], config["num_species"]
    order = WireOrder(config["wire_order"])
    for gate in config["gates"]:
        sent = []
        for wires in gate["coupling_map"]:
            circuit = QuantumCircuit(wires_total)
            qargs = CircuitTools.convert_wire_order(
                list(wires),
                convention_from=order,
                convention_to=WireOrder.SEQUENTIAL,
                num_sites=wires_total // species,
                num_species=species,
                sort=True,
            )
            make = GATES.get(gate["name"], lambda n, g=gate["name"]: Gate(g, n, [ANGLE]))
            circuit.append(make(len(wires)), qargs)
            circuit.measure_all()
            payload = CircuitTools.circuit_to_cold_atom(circuit, backend, shots=1)
            sent.append(payload["experiment_0"]["instructions"][0][1] == list(wires))
        what = (
            f"{config['backend_name']}: circuit_to_cold_atom accepts every {gate['name']} coupling"
        )
        report.check(what, all(sent), f"{sum(sent)}/{len(sent)} sent on their wires")


def check_configs(args: argparse.Namespace, report: Report) -> None:
    urls = [backend_url(args.url, name) for name in args.backends]
    configs: dict[str, dict[str, Any]] = {}
    for url, name in zip(urls, args.backends, strict=True):
        report.attempt(
            f"{name}: get_config",
            lambda n=name, u=url: configs.update({n: fitting_config(args, report, n, u)}),
        )
    provider = enabled_account(args, urls)
    for name, config in configs.items():
        report.attempt(
            f"{name}: client checks",
            lambda n=name, c=config: gate_payloads(report, provider.get_backend(n), c),
        )
    report.attempt("backends listing", lambda: listed_configs(args, report))
    report.attempt("trailing slash", lambda: trailing_slash(args, report))


def listed_configs(args: argparse.Namespace, report: Report) -> None:
    """The mount's `backends` list holds clean configs whose urls point back to the mount."""
    answer = requests.get(f"{args.url}{MOUNT}/backends", timeout=HTTP_TIMEOUT)
    answer.raise_for_status()
    listing = {config["backend_name"]: config for config in answer.json()}
    report.check(
        "backends lists every checked backend", set(args.backends) <= set(listing), sorted(listing)
    )
    for name in args.backends:
        if name in listing:
            BackendConfiguration.from_dict(listing[name])
            url = listing[name].get("url")
            report.check(
                f"{name}: listed url is the mount's", url == f"{backend_url(args.url, name)}/", url
            )


def trailing_slash(args: argparse.Namespace, report: Report) -> None:
    """A URL typed with a trailing slash (the client then asks for `//get_config`) still works."""
    name = args.backends[0]
    provider = enabled_account(args, [backend_url(args.url, name) + "/"])
    found = remote_names(provider)
    report.check(f"{name}: registered with a trailing slash still found", found == [name], found)


def parsed(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["run", "configs"])
    parser.add_argument("--url", default=os.environ.get("QLUED_URL"))
    parser.add_argument("--token", default=os.environ.get("QLUED_TOKEN"))
    parser.add_argument("--username", default=os.environ.get("QLUED_USERNAME", "qiskit-user"))
    parser.add_argument("--backends", default=",".join((FERMIONS, SINGLEQUDIT, MULTIQUDIT)))
    args = parser.parse_args(argv)
    if not args.url or not args.token:
        parser.error("give --url and --token (or QLUED_URL and QLUED_TOKEN)")
    args.url = args.url.rstrip("/")
    args.backends = [name for name in args.backends.split(",") if name]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parsed(argv)
    report = Report(args.token)
    (run_jobs if args.mode == "run" else check_configs)(args, report)
    if report.failures:
        print(f"FAILED {len(report.failures)} check(s): {'; '.join(report.failures)}", flush=True)
        return 1
    print("ALL CHECKS PASSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
