"""The one family of errors every storage provider raises.

Providers translate their client's exceptions (OSError, pymongo, Dropbox API errors)
into these, so that the lifecycle in `base.py`, the API and the spooler never see a
driver-specific exception.
"""


class StorageError(Exception):
    """Something went wrong talking to a storage provider."""


class NotFound(StorageError):
    """The document does not exist (or was moved away by someone else)."""


class AlreadyExists(StorageError):
    """A create-only write found the document already there."""


class Unavailable(StorageError):
    """The storage cannot be reached right now; trying again later may work."""


class Corrupt(Unavailable):
    """A document stays unparseable: half-written by a foreign writer, or damaged."""


class AccessDenied(StorageError):
    """The storage refused our credentials or the operation."""


class InvalidName(StorageError):
    """An id or a name failed validation before it reached a path or a query."""
