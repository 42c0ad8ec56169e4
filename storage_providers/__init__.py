"""Storage providers shared by the qlued API and the spoolers (plain Python, no Django)."""

from .base import CANCEL_DETAIL, CancelOutcome, Claim, Place, Ref, Sighting, StorageProvider, unwrap
from .errors import (
    AccessDenied,
    AlreadyExists,
    Corrupt,
    InvalidName,
    NotFound,
    StorageError,
    Unavailable,
)
from .local import LocalProvider
from .registry import KINDS, LoginError, TypeUnavailable, build_provider, check_login

__all__ = [
    "CANCEL_DETAIL",
    "KINDS",
    "AccessDenied",
    "AlreadyExists",
    "CancelOutcome",
    "Claim",
    "Corrupt",
    "InvalidName",
    "LocalProvider",
    "LoginError",
    "NotFound",
    "Place",
    "Ref",
    "Sighting",
    "StorageError",
    "StorageProvider",
    "TypeUnavailable",
    "Unavailable",
    "build_provider",
    "check_login",
    "unwrap",
]
