"""The built-in simulators of the spooler, keyed by display name (SPEC §9)."""

from .base import Backend, JobCancelled
from .fermions import FERMIONS
from .spins import MULTI_QUDIT, SINGLE_QUDIT
from .validation import JobRejected

BACKENDS: dict[str, Backend] = {
    backend.display_name: backend for backend in (SINGLE_QUDIT, MULTI_QUDIT, FERMIONS)
}

__all__ = ["BACKENDS", "Backend", "JobCancelled", "JobRejected"]
