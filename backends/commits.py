"""A post's ledger commit on SQLite: written under the write lock, synced after it, in groups.

With `synchronous=FULL` SQLite fsyncs its write-ahead log inside COMMIT, holding the
database's one write lock all the while, so concurrent posts queue behind one another's
fsync, and SQLite's busy handler puts the ones waiting to sleep. Inside `durable_commits`
the connection commits with `synchronous=NORMAL` instead (the log is written, not
synced), and when the block ends the log is synced through a `GroupSync`: one flush,
after the lock is released, covers every commit that threads of this worker wrote before
it began. The row is durable when the block returns, and the post answers only after.

It is as durable as FULL: a commit's frames are in the log file once COMMIT returns,
and a checkpoint copies frames into the database file only after syncing the log, and
syncs the database file after, so a committed row is always in one of two synced files.
A log that is gone when it is to be synced was checkpointed into the database file and
removed, which syncs it first. In any journal mode but WAL, and on other databases
(PostgreSQL makes commits durable, in groups, by itself), commits stay as they are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from storage_providers.groupsync import GroupSync


def _sync_file(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # checkpointed into the database file, which was synced, and removed
    try:
        # SQLite's own log syncs are fdatasync too: the frames and the log's length, not
        # its times (a log rewound after a checkpoint keeps its length).
        os.fdatasync(fd)
    finally:
        os.close(fd)


_LOG_SYNC = GroupSync(_sync_file)


class NotDurable(Exception):
    """The block committed, but its log could not be synced: the commit may not last."""


# The log of each database file, asked once (the journal mode of a file persists).
_logs: dict[str, str | None] = {}


def _log_path() -> str | None:
    """The write-ahead log of this thread's SQLite connection, or None when there is none
    or when the block would not commit (inside a transaction, whose end commits)."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return None
    connection.ensure_connection()
    name = str(connection.settings_dict["NAME"])
    if name not in _logs:
        raw = connection.connection
        (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
        (_seq, _main, path) = raw.execute("PRAGMA database_list").fetchone()
        # An in-memory database has no file, and other journal modes keep FULL.
        _logs[name] = f"{path}-wal" if mode == "wal" and path else None
    return _logs[name]


@contextmanager
def durable_commits() -> Iterator[None]:
    """What the block commits is on disk when it returns (not if it raises).

    NotDurable when the log cannot be synced after the block: the caller undoes what
    it committed, as after a failed write.
    """
    log = _log_path()
    if log is None:
        yield
        return
    raw = connection.connection
    raw.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        raw.execute("PRAGMA synchronous=FULL")
    try:
        _LOG_SYNC.sync(log)
    except OSError as exc:
        raise NotDurable(f"the ledger's log could not be synced: {exc.strerror}") from None
