"""Exact simulator of spin-1/2 fermions in a row of four tweezers (`fermions`).

Wire 2k is tweezer k spin up, wire 2k+1 spin down (interleaved). A basis state is a
bitmask of occupied modes; fermionic signs follow the Jordan-Wigner order of the wires.
Every gate keeps the number of atoms of each spin, so the state lives in the sector of
the loaded numbers: at most 36 states for four tweezers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .base import NEGLIGIBLE, Backend, Probabilities
from .validation import Circuit, GateSpec, Operation, RuleBroken

NUM_TWEEZERS = 4
NUM_MODES = 2 * NUM_TWEEZERS
UP_MODES = sum(1 << (2 * k) for k in range(NUM_TWEEZERS))
DOWN_MODES = UP_MODES << 1

State = npt.NDArray[np.complex128]
Real = npt.NDArray[np.float64]


def _parity_below(mask: int, mode: int) -> int:
    """+1 or -1: the Jordan-Wigner sign of the occupied modes before `mode`."""
    return -1 if (mask & ((1 << mode) - 1)).bit_count() % 2 else 1


@lru_cache(maxsize=32)
def sector(num_up: int, num_down: int) -> tuple[int, ...]:
    """Every occupation bitmask holding `num_up` up and `num_down` down fermions."""
    return tuple(
        mask
        for mask in range(1 << NUM_MODES)
        if (mask & UP_MODES).bit_count() == num_up and (mask & DOWN_MODES).bit_count() == num_down
    )


def hop(mask: int, source: int, target: int) -> tuple[int, int] | None:
    """c†_target c_source on a basis state: (new mask, sign), or None when it vanishes."""
    if not mask >> source & 1:
        return None
    emptied = mask & ~(1 << source)
    if emptied >> target & 1:
        return None
    sign = _parity_below(mask, source) * _parity_below(emptied, target)
    return emptied | (1 << target), sign


@lru_cache(maxsize=64)
def bond_generator(basis: tuple[int, ...], left: int) -> Real:
    """-Σ_σ (c†_{k,σ} c_{k+1,σ} + h.c.) for tweezers k = left and left+1, in `basis`."""
    index = {mask: i for i, mask in enumerate(basis)}
    matrix = np.zeros((len(basis), len(basis)))
    for spin in (0, 1):
        here, there = 2 * left + spin, 2 * left + 2 + spin
        for column, mask in enumerate(basis):
            for source, target in ((there, here), (here, there)):
                moved = hop(mask, source, target)
                if moved is not None:
                    matrix[index[moved[0]], column] -= moved[1]
    matrix.setflags(write=False)
    return matrix


def tweezers_of(wires: Sequence[int]) -> range:
    """The tweezers whose two wires make up a run of wires as the coupling maps list them."""
    return range(wires[0] // 2, wires[-1] // 2 + 1)


def occupation(basis: tuple[int, ...], mode: int) -> Real:
    """n for one mode, diagonal in `basis`."""
    return np.array([mask >> mode & 1 for mask in basis], dtype=np.float64)


def apply(psi: State, basis: tuple[int, ...], op: Operation) -> State:
    """Apply one gate exactly: fhop through an eigendecomposition, fint and fphase as phases."""
    tweezers = tweezers_of(op.wires)
    if op.name == "fhop":
        generator = np.zeros((len(basis), len(basis)))
        for theta, left in zip(op.params, tweezers[:-1], strict=True):
            generator += theta * bond_generator(basis, left)
        values, real_vectors = np.linalg.eigh(generator)
        vectors = real_vectors.astype(np.complex128)  # numpy has no BLAS for real @ complex
        evolved: State = vectors @ (np.exp(-1j * values) * (vectors.T @ psi))
        return evolved
    diagonal: Real = np.zeros(len(basis))
    for position, k in enumerate(tweezers):
        up, down = occupation(basis, 2 * k), occupation(basis, 2 * k + 1)
        if op.name == "fint":
            diagonal += op.params[0] * up * down
        else:  # fphase
            diagonal += op.params[position] * (up + down)
    phases: State = np.exp(-1j * diagonal)
    return psi * phases


class FermionBackend(Backend):
    """Fermi-Hubbard physics in four tweezers: hopping, on-site interaction, local phases."""

    cold_atom_type = "fermion"
    wire_order = "interleaved"
    num_species = 2
    already_loaded = "mode {wire} is already occupied"

    def load_amount(self, params: Sequence[float]) -> int:
        """One fermion per load; a load takes no parameters."""
        if params:
            raise RuleBroken(f"takes no parameters, got {len(params)}")
        return 1

    def distribution(self, circuit: Circuit) -> tuple[list[str], Probabilities]:
        """Evolve in the sector of the loaded atoms and read the odds of the measured wires."""
        start = sum(1 << mode for mode in circuit.loads)
        basis = sector((start & UP_MODES).bit_count(), (start & DOWN_MODES).bit_count())
        psi = np.zeros(len(basis), dtype=np.complex128)
        psi[basis.index(start)] = 1.0
        for op in circuit.operations:
            psi = apply(psi, basis, op)
        odds: dict[str, float] = {}
        for mask, probability in zip(basis, (np.abs(psi) ** 2).tolist(), strict=True):
            if probability > NEGLIGIBLE:
                label = " ".join(str(mask >> wire & 1) for wire in circuit.measured)
                odds[label] = odds.get(label, 0.0) + probability
        return list(odds), np.array(list(odds.values()))


def runs(min_length: int) -> tuple[tuple[int, ...], ...]:
    """All wires of every run of at least `min_length` consecutive tweezers, sorted."""
    return tuple(
        tuple(range(2 * first, 2 * last + 2))
        for first in range(NUM_TWEEZERS)
        for last in range(first + min_length - 1, NUM_TWEEZERS)
    )


FERMIONS = FermionBackend(
    display_name="fermions",
    description=(
        "Exact simulator of spin-1/2 fermions in four optical tweezers (Fermi-Hubbard "
        "physics): wire 2k is tweezer k spin up, wire 2k+1 spin down."
    ),
    num_wires=NUM_MODES,
    gates=[
        GateSpec(
            "fhop",
            ("j_i",),
            "Hopping between neighbouring tweezers, one angle per bond: "
            "G_b = -sum_s (c^dag_{k,s} c_{k+1,s} + h.c.)",
            runs(2),
            per="bond",
        ),
        GateSpec("fint", ("u",), "On-site interaction: G = sum_k n_{k,up} n_{k,down}", runs(1)),
        GateSpec(
            "fphase",
            ("mu_i",),
            "Phase per tweezer, one angle per tweezer: G_k = n_{k,up} + n_{k,down}",
            runs(1),
            per="tweezer",
        ),
    ],
)
