"""Exact simulators of collective spins: `singlequdit` (one wire) and `multiqudit` (four).

A wire loaded with N atoms is a spin of length S = N/2. Basis state k (0 .. N) has k
atoms flipped, which is what `measure` reports, and Lz = S - k: the atoms start with
none flipped, m = +S, and Lx, Ly, Lz are the standard spin matrices in the basis
m = S, S-1, .., -S (σ/2 for one atom) -- the convention of qiskit-cold-atom's
SpinSimulator, so that a circuit gives the same odds there and here. A wire never
loaded is a spin of length 0: every gate leaves it alone and it measures 0. The state
is one tensor with an axis per wire and each gate acts on its own axes only, so
nothing of the size of the whole Hilbert space squared is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .base import NEGLIGIBLE, Backend, Probabilities
from .validation import Circuit, GateSpec, Operation, RuleBroken, fmt_number

MAX_ATOMS = 500
MAX_DIMENSION = 2**12

State = npt.NDArray[np.complex128]
Real = npt.NDArray[np.float64]
Eigen = tuple[Real, State]  # eigenvectors kept complex: numpy has no BLAS for real @ complex


def magnetisations(dim: int) -> Real:
    """Lz of each basis state k of a spin of dimension `dim`: m = S - k, none flipped first."""
    return ((dim - 1) / 2 - np.arange(dim)).astype(np.float64)


def flips(dim: int) -> Real:
    """<k+1| L- |k> for k = 0 .. dim-2: the amplitude of flipping one more atom."""
    spin = (dim - 1) / 2
    m = magnetisations(dim)[:-1]
    return np.sqrt(spin * (spin + 1) - m * (m - 1))


@lru_cache(maxsize=16)
def lx_eigen(dim: int) -> Eigen:
    """Eigenvalues and eigenvectors (real, stored complex) of Lx, tridiagonal in the Lz basis."""
    return _eigen(_tridiagonal(flips(dim) / 2))


@lru_cache(maxsize=32)
def flip_flop_blocks(
    dim_a: int, dim_b: int
) -> tuple[tuple[npt.NDArray[np.intp], Real, State], ...]:
    """Lx⊗Lx + Ly⊗Ly = (L+⊗L- + L-⊗L+)/2 split into blocks of fixed total flipped atoms.

    Each block is (flat indices a*dim_b + b, eigenvalues, eigenvectors); blocks of one
    state are left out, the generator is zero there.
    """
    flips_a = flips(dim_a)
    flips_b = flips(dim_b)  # <b-1| L+ |b> = <b| L- |b-1>
    blocks = []
    for total in range(1, dim_a + dim_b - 2):
        a = np.arange(max(0, total - dim_b + 1), min(dim_a - 1, total) + 1)
        if len(a) < 2:
            continue
        b = total - a
        coupling = flips_a[a[:-1]] * flips_b[b[:-1] - 1] / 2  # <a+1, b-1| G |a, b>
        values, vectors = _eigen(_tridiagonal(coupling))
        rows = a * dim_b + b
        rows.setflags(write=False)
        blocks.append((rows, values, vectors))
    return tuple(blocks)


def _tridiagonal(off_diagonal: Real) -> Real:
    """The real symmetric matrix with zero diagonal and `off_diagonal` beside it."""
    return np.diag(off_diagonal, 1) + np.diag(off_diagonal, -1)


def _eigen(matrix: Real) -> Eigen:
    """Eigenvalues and (real) eigenvectors of a real symmetric matrix, read-only (cached)."""
    values, vectors = np.linalg.eigh(matrix)
    complex_vectors = vectors.astype(np.complex128)
    values.setflags(write=False)
    complex_vectors.setflags(write=False)
    return values, complex_vectors


def _on_axes(psi: State, axes: Sequence[int], act: Callable[[State], State]) -> State:
    """Apply `act` to the state reshaped as (product of `axes`, everything else)."""
    front = list(range(len(axes)))
    moved = np.moveaxis(psi, list(axes), front)
    shape = moved.shape
    size = math.prod(shape[: len(axes)])
    out = act(moved.reshape(size, -1)).reshape(shape)
    restored: State = np.moveaxis(out, front, list(axes))
    return restored


def _phase(psi: State, axis: int, phases: State) -> State:
    """Multiply by a phase diagonal in the Lz basis of one wire."""
    shape = [1] * psi.ndim
    shape[axis] = len(phases)
    return psi * phases.reshape(shape)


def rlx(psi: State, wires: tuple[int, ...], params: tuple[float, ...]) -> State:
    """exp(-iθ Lx) on one wire, through the cached eigenbasis of Lx."""
    axis, theta = wires[0], params[0]
    if psi.shape[axis] == 1:
        return psi
    values, vectors = lx_eigen(psi.shape[axis])
    phases = np.exp(-1j * theta * values)[:, None]
    return _on_axes(psi, [axis], lambda flat: vectors @ (phases * (vectors.T @ flat)))


def rly(psi: State, wires: tuple[int, ...], params: tuple[float, ...]) -> State:
    """exp(-iθ Ly) = R exp(-iθ Lx) R† with R = exp(-iπ/2 Lz), so Lx's eigenbasis serves."""
    axis = wires[0]
    if psi.shape[axis] == 1:
        return psi
    quarter = np.exp(-0.5j * np.pi * magnetisations(psi.shape[axis]))
    turned = rlx(_phase(psi, axis, quarter.conj()), wires, params)
    return _phase(turned, axis, quarter)


def rlz(psi: State, wires: tuple[int, ...], params: tuple[float, ...]) -> State:
    """exp(-iθ Lz) on one wire."""
    m = magnetisations(psi.shape[wires[0]])
    return _phase(psi, wires[0], np.exp(-1j * params[0] * m))


def rlz2(psi: State, wires: tuple[int, ...], params: tuple[float, ...]) -> State:
    """exp(-iθ Lz²) on one wire."""
    m = magnetisations(psi.shape[wires[0]])
    return _phase(psi, wires[0], np.exp(-1j * params[0] * m**2))


def rlzlz(psi: State, wires: tuple[int, ...], params: tuple[float, ...]) -> State:
    """exp(-iθ Lz⊗Lz) on two wires: a phase per pair of magnetisations."""
    first, second = wires
    m_first = magnetisations(psi.shape[first])
    m_second = magnetisations(psi.shape[second])
    shape = [1] * psi.ndim
    shape[first], shape[second] = len(m_first), len(m_second)
    phases: State = np.exp(-1j * params[0] * np.outer(m_first, m_second))
    return psi * phases.reshape(shape)


def rlxly(psi: State, wires: tuple[int, ...], params: tuple[float, ...]) -> State:
    """exp(-iθ (Lx⊗Lx + Ly⊗Ly)) on two wires, block by block of total magnetisation."""
    theta = params[0]
    blocks = flip_flop_blocks(psi.shape[wires[0]], psi.shape[wires[1]])
    if not blocks:
        return psi

    def act(flat: State) -> State:
        out = flat.copy()
        for rows, values, vectors in blocks:
            phases = np.exp(-1j * theta * values)[:, None]
            out[rows] = vectors @ (phases * (vectors.T @ flat[rows]))
        return out

    return _on_axes(psi, wires, act)


GATES: dict[str, Callable[[State, tuple[int, ...], tuple[float, ...]], State]] = {
    "rlx": rlx,
    "rly": rly,
    "rlz": rlz,
    "rlz2": rlz2,
    "rlzlz": rlzlz,
    "rlxly": rlxly,
}


def evolve(dims: tuple[int, ...], operations: Sequence[Operation]) -> State:
    """The final state, starting with no atom flipped on any wire."""
    psi = np.zeros(dims, dtype=np.complex128)
    psi[(0,) * len(dims)] = 1.0
    for op in operations:
        psi = GATES[op.name](psi, op.wires, op.params)
    return psi


def measured_distribution(psi: State, measured: Sequence[int]) -> tuple[list[str], Probabilities]:
    """Memory strings of the measured wires that can occur, and their probabilities."""
    others = tuple(axis for axis in range(psi.ndim) if axis not in measured)
    marginal = (np.abs(psi) ** 2).sum(axis=others)
    flat = marginal.ravel()
    support = np.flatnonzero(flat > NEGLIGIBLE)
    digits = np.unravel_index(support, marginal.shape)
    labels = [
        " ".join(map(str, column)) for column in zip(*(d.tolist() for d in digits), strict=True)
    ]
    return labels, flat[support]


class SpinBackend(Backend):
    """Collective spins on one or more wires, neighbours coupled by rlzlz and rlxly."""

    cold_atom_type = "spin"
    wire_order = "sequential"
    num_species = 1
    already_loaded = "wire {wire} is already loaded"

    def load_amount(self, params: Sequence[float]) -> int:
        """The number of atoms N: a whole number from 1 to MAX_ATOMS."""
        if len(params) != 1:
            raise RuleBroken(f"takes 1 parameter (the number of atoms N), got {len(params)}")
        atoms = params[0]
        if not float(atoms).is_integer():
            raise RuleBroken(f"N = {fmt_number(atoms)} is not a whole number")
        if atoms < 1:
            raise RuleBroken(f"N = {fmt_number(atoms)} is below the minimum 1")
        if atoms > MAX_ATOMS:
            raise RuleBroken(f"N = {fmt_number(atoms)} is above the limit {MAX_ATOMS}")
        return int(atoms)

    def check_loads(self, loads: Mapping[int, int]) -> None:
        """The product of the wires' dimensions N+1 must stay within MAX_DIMENSION."""
        dimension = math.prod(atoms + 1 for atoms in loads.values())
        if dimension > MAX_DIMENSION:
            raise RuleBroken(
                f"the total Hilbert dimension {dimension} is above the limit {MAX_DIMENSION}"
            )

    def distribution(self, circuit: Circuit) -> tuple[list[str], Probabilities]:
        """Evolve the spins exactly and read the odds of the measured wires."""
        dims = tuple(circuit.loads.get(wire, 0) + 1 for wire in range(self.num_wires))
        return measured_distribution(evolve(dims, circuit.operations), circuit.measured)


def spin_gates(num_wires: int) -> list[GateSpec]:
    """The gates of a spin backend with `num_wires` wires."""
    single = tuple((wire,) for wire in range(num_wires))
    pairs = tuple((wire, wire + 1) for wire in range(num_wires - 1))
    gates = [
        GateSpec("rlx", ("omega",), "Rotation about x: G = Lx", single),
        GateSpec("rly", ("omega",), "Rotation about y: G = Ly", single),
        GateSpec("rlz", ("delta",), "Rotation about z: G = Lz", single),
        GateSpec("rlz2", ("chi",), "One-axis twisting: G = Lz^2", single),
    ]
    if pairs:
        gates += [
            GateSpec("rlzlz", ("J",), "Ising coupling of neighbours: G = Lz Lz", pairs),
            GateSpec("rlxly", ("J",), "Flip-flop of neighbours: G = Lx Lx + Ly Ly", pairs),
        ]
    return gates


SINGLE_QUDIT = SpinBackend(
    display_name="singlequdit",
    description=(
        "Exact simulator of one collective spin of up to 500 atoms: load N atoms, rotate "
        "with rlx, rly, rlz, twist with rlz2, measure the number of flipped atoms."
    ),
    num_wires=1,
    gates=spin_gates(1),
)

MULTI_QUDIT = SpinBackend(
    display_name="multiqudit",
    description=(
        "Exact simulator of four collective spins in a row, each as singlequdit, neighbours "
        "coupled by rlzlz and rlxly; total Hilbert dimension at most 4096."
    ),
    num_wires=4,
    gates=spin_gates(4),
)
