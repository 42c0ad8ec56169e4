"""A folder on a local (or shared network) disk, in the layout of SPEC §6.

Writes go to a temporary file in the target folder, are fsynced, then linked or
renamed into place, so a reader never sees half a document. A new document's file
is made without a name (O_TMPFILE, where the filesystem offers it) and linked in
once synced, so nothing is left behind when a write fails or the process dies; an
overwrite, and a filesystem without O_TMPFILE, use a named temporary file (its name
does not end in `.json`, because spoolers list `*.json`). The folder is fsynced
after the link or rename too (and every folder made on the way), so that an
answered post survives a power cut; threads naming files in one folder at once share
that fsync (`GroupSync`). A claim is a rename, which exactly one of several
competing spoolers wins.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

import orjson

from .base import PER_BACKEND, Place, Ref, StorageProvider
from .errors import AccessDenied, AlreadyExists, Corrupt, NotFound, StorageError, Unavailable
from .groupsync import GroupSync
from .schemas import Document

# Pauses between attempts to parse a document another process is rewriting.
READ_RETRIES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)

# Written atomically but not fsynced: a lease lost in a power cut is rebuilt by the
# reaper (a running job without a lease is adopted), and it is written per job.
REBUILDABLE = frozenset({Place.LEASES})

FOLDERS = {
    Place.CONFIGS: "backends/configs",
    Place.QUEUED: "jobs/queued",
    Place.RUNNING: "jobs/running",
    Place.FINISHED: "jobs/finished",
    Place.DELETED: "jobs/deleted",
    Place.STATUS: "status",
    Place.RESULTS: "results",
    Place.PUBLIC_KEYS: "backends/public_keys",
    Place.LEASES: "jobs/leases",
    Place.ENDINGS: "jobs/endings",
}


def _storage_error(exc: OSError, what: str) -> StorageError:
    """Translate an OSError into the provider error family."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AccessDenied(f"Access to the storage folder was refused ({what}).")
    return Unavailable(f"The storage folder is not usable ({what}: {exc.strerror}).")


def _sync_folder(folder: str) -> None:
    """fsync a folder, so that the names made or removed in it survive a power cut."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# The folders' fsyncs after renames, shared by the threads of a process renaming at once.
_FOLDER_SYNC = GroupSync(_sync_folder)


def _write_all(fd: int, data: bytes) -> None:
    """Every byte of `data` to `fd` (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Unnamed:
    """New files made without a name (O_TMPFILE), linked in through /proc once synced.

    Cheaper than a named temporary file (no name to add to the folder and take out
    again) and it leaves no litter. Off for good in a process once the filesystem or
    the system refuses it: the named temporary file then serves.
    """

    # What open(O_TMPFILE) answers where the filesystem or the kernel has no such files.
    UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})

    def __init__(self) -> None:
        self.usable = hasattr(os, "O_TMPFILE")
        self._proc: int | None = None  # /proc itself is the same in every forked worker

    def open(self, folder: str) -> int | None:
        """A nameless file in `folder`, or None when this process cannot make them."""
        if not self.usable:
            return None
        if self._proc is None:
            try:
                self._proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                self.usable = False
                return None
        try:
            return os.open(folder, os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno not in self.UNSUPPORTED:
                raise  # the folder is gone (FileNotFoundError), the disk is full, ...
            self.usable = False
            return None

    def link(self, fd: int, path: str) -> bool:
        """Give the file open as `fd` its name `path`: False (and off from now on) when
        /proc cannot name it; FileExistsError when the name is taken, FileNotFoundError
        when its folder is gone."""
        try:
            os.link(f"self/fd/{fd}", path, src_dir_fd=self._proc, follow_symlinks=True)
        except FileNotFoundError:
            if not os.path.isdir(os.path.dirname(path)):
                raise
            self.usable = False  # the folder is there: /proc has no such descriptor
            return False
        return True


_UNNAMED = _Unnamed()


def _write_unnamed(folder: str, path: str, doc_id: str, data: bytes, durable: bool) -> bool:
    """`data` into a nameless file in `folder`, synced, then named `path` (never replacing);
    False when this process cannot make or name such files, and nothing was made."""
    fd = _UNNAMED.open(folder)
    if fd is None:
        return False
    try:
        _write_all(fd, data)
        if durable:
            os.fsync(fd)
        try:
            return _UNNAMED.link(fd, path)
        except FileExistsError:
            raise AlreadyExists(f"{doc_id}.json already exists") from None
    finally:
        os.close(fd)  # unnamed, the file goes with its last descriptor


def _write_named(
    folder: str, path: str, doc_id: str, data: bytes, create: bool, durable: bool
) -> None:
    """`data` into a named temporary file in `folder`, synced, then linked as `path` when
    `create` (never replacing), else renamed over it."""
    tmp = f"{folder}/.{doc_id}.{os.urandom(8).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    named = False
    try:
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if create:
            try:
                os.link(tmp, path)  # fails, unlike rename, when the target exists
            except FileExistsError:
                raise AlreadyExists(f"{doc_id}.json already exists") from None
        else:
            os.replace(tmp, path)
            named = True  # the temporary name is gone with the rename
    finally:
        if not named:
            _unlink(tmp)  # the second name after link, or litter


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


class LocalProvider(StorageProvider):
    """Documents as `{id}.json` files below `base_path`.

    Paths are plain strings inside: pathlib's objects cost a post more CPU than the
    system calls they name.
    """

    storage_type = "local"

    def __init__(self, name: str, base_path: str | os.PathLike[str]) -> None:
        super().__init__(name)
        self.base_path = Path(base_path)
        self._base = os.fspath(self.base_path)
        self._made: set[str] = set()

    # ---- paths ----------------------------------------------------------------

    def _folder(self, place: Place, display: str = "") -> str:
        if place in PER_BACKEND:
            return f"{self._base}/{FOLDERS[place]}/{display}"
        return f"{self._base}/{FOLDERS[place]}"

    def _path(self, ref: Ref) -> str:
        """The file of `ref`; the base has checked every part of it (`check_ref`)."""
        return f"{self._folder(ref.place, ref.display)}/{ref.doc_id}.json"

    def _ensure(self, folder: str) -> None:
        """Make `folder` and its missing parents, each made one recorded in its parent."""
        if folder in self._made:
            return
        missing = []
        for parent in (Path(folder), *Path(folder).parents):
            if parent.is_dir():
                break
            missing.append(parent)
        os.makedirs(folder, exist_ok=True)
        for made in reversed(missing):
            _sync_folder(os.fspath(made.parent))
        self._made.add(folder)

    # ---- primitives -------------------------------------------------------------

    def _read(self, ref: Ref) -> Document:
        path = self._path(ref)
        for pause in READ_RETRIES:
            try:
                doc = orjson.loads(_read_bytes(path))
            except FileNotFoundError:
                raise NotFound(f"{ref.place} {ref.doc_id} not found") from None
            except OSError as exc:
                raise _storage_error(exc, "read") from None
            except orjson.JSONDecodeError:
                # sqooler rewrites files in place (truncate, then write): wait it out.
                time.sleep(pause)
                continue
            if not isinstance(doc, dict):
                raise NotFound(f"{ref.place} {ref.doc_id} is not a document")
            return doc
        raise Corrupt(f"{ref.place} {ref.doc_id} stays unreadable (half-written?)")

    def _write(self, ref: Ref, doc: Document, *, create: bool) -> None:
        folder = self._folder(ref.place, ref.display)
        durable = ref.place not in REBUILDABLE
        data = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
        try:
            try:
                self._ensure(folder)
                self._write_atomic(folder, ref.doc_id, data, create, durable)
            except FileNotFoundError:
                self._made.discard(folder)  # the folder was removed under us: once more
                self._ensure(folder)
                self._write_atomic(folder, ref.doc_id, data, create, durable)
        except OSError as exc:  # the second attempt's failure too
            raise _storage_error(exc, "write") from None

    def _write_atomic(
        self, folder: str, doc_id: str, data: bytes, create: bool, durable: bool
    ) -> None:
        path = f"{folder}/{doc_id}.json"
        if not (create and _write_unnamed(folder, path, doc_id, data, durable)):
            _write_named(folder, path, doc_id, data, create, durable)
        if durable:
            _FOLDER_SYNC.sync(folder)  # the new name itself, not only the data

    def _move(self, src: Ref, dst: Ref) -> None:
        source, target = self._path(src), self._path(dst)
        source_folder, target_folder = os.path.dirname(source), os.path.dirname(target)
        try:
            self._ensure(target_folder)
            os.rename(source, target)
        except FileNotFoundError:
            if os.path.exists(source):  # the target folder vanished: make it again
                self._made.discard(target_folder)
                self._ensure(target_folder)
                return self._move(src, dst)
            raise NotFound(f"{src.place} {src.doc_id} not found") from None
        except OSError as exc:
            raise _storage_error(exc, "move") from None
        if dst.place not in REBUILDABLE:
            try:
                _FOLDER_SYNC.sync(target_folder)
                if source_folder != target_folder:
                    _FOLDER_SYNC.sync(source_folder)  # or the job could come back in its queue
            except OSError as exc:
                raise _storage_error(exc, "move") from None

    def _delete(self, ref: Ref) -> None:
        try:
            _unlink(self._path(ref))
        except OSError as exc:
            raise _storage_error(exc, "delete") from None

    def _list_ids(self, place: Place, display: str) -> list[str]:
        return self._stems(self._folder(place, display))

    def _list_backends(self) -> list[str]:
        return self._stems(self._folder(Place.CONFIGS))

    def _stems(self, folder: str) -> list[str]:
        try:
            with os.scandir(folder) as entries:
                return [e.name[:-5] for e in entries if e.name.endswith(".json")]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _storage_error(exc, "list") from None


def _unlink(path: str) -> None:
    """Remove a file; one that is gone already is no error."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
