"""Storage providers shared by the qlued API and the spoolers (plain Python, no Django)."""

from .base import Claim, Place, Ref, StorageProvider, unwrap
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
    "KINDS",
    "AccessDenied",
    "AlreadyExists",
    "Claim",
    "Corrupt",
    "InvalidName",
    "LocalProvider",
    "LoginError",
    "NotFound",
    "Place",
    "Ref",
    "StorageError",
    "StorageProvider",
    "TypeUnavailable",
    "Unavailable",
    "build_provider",
    "check_login",
    "unwrap",
]
