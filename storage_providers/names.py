"""Names and ids that may reach a file path, a Mongo query or a Dropbox path.

Everything from outside passes through here first: a name that fails is refused
before any storage is touched, which is what keeps path traversal and query
injection out.
"""

from __future__ import annotations

import re

from bson import ObjectId

from .errors import InvalidName

NAME_RE = re.compile(r"[a-z0-9]{1,100}")  # SPEC §2; §4: at most 100 characters, as the models hold
OBJECT_ID_RE = re.compile(r"[0-9a-f]{24}")
# Dropbox ids: {UTC %Y%m%d_%H%M%S}-{display}-{username}-{5 hex}
# (display names are at most 100 characters, user segments 150: at most 273 in all)
DROPBOX_JOB_ID_RE = re.compile(r"\d{8}_\d{6}-[a-z0-9]{1,100}-[A-Za-z0-9_]{1,150}-[0-9a-f]{5}")
KEY_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,128}")
# The per-user path segment of media that file documents by user (Dropbox).
USER_FOLDER_RE = re.compile(r"[A-Za-z0-9_]{1,150}")


def is_name(value: str) -> bool:
    """Provider and display names: lowercase letters and digits only (SPEC §2)."""
    return bool(NAME_RE.fullmatch(value))


def check_name(value: str) -> str:
    """Return `value` when it is a valid provider or display name, else raise InvalidName."""
    if not isinstance(value, str) or not is_name(value):
        raise InvalidName(f"Invalid name: {value!r}")
    return value


def check_key_id(value: str) -> str:
    """Key ids of public keys become file names too."""
    if not isinstance(value, str) or not KEY_ID_RE.fullmatch(value):
        raise InvalidName(f"Invalid key id: {value!r}")
    return value


def new_object_id() -> str:
    """A fresh job id: 24 hex digits that begin with the creation time, so ids sort by age."""
    return str(ObjectId())
