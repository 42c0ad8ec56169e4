"""Group commit: one flush to disk for every thread of a process that needs it at once.

A thread that has written (a name into a folder, a commit into a log) and needs the
write on disk calls `sync(key)` once the write has returned. A flush that is already
under way may have begun before that write, so it does not count: the thread waits
for it to end, then for one that begins later, which it runs itself unless another
waiter has begun it. One flush releases every thread that asked before it began. A
flush that fails releases nobody: each of its waiters runs a flush of its own next
and sees its own error.

In a sync worker (one thread) every call is a flush of its own, as without this; in
a gthread worker the posts answered at once share their folders' and the ledger's
fsyncs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class _Turn:
    """The flushes of one key: how many were asked for, covered, and whether one runs."""

    def __init__(self) -> None:
        self.changed = threading.Condition(threading.Lock())
        self.asked = 0  # tickets given out: the n-th asker holds ticket n
        self.covered = 0  # every ticket up to this one is on disk
        self.running = False


class GroupSync:
    """`sync(key)` flushes `key` with `flush(key)`, shared among the threads asking at once."""

    def __init__(self, flush: Callable[[str], None]) -> None:
        self._flush = flush
        self._forget()
        # A forked child (a gunicorn worker) starts with no turns and free locks.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[str, _Turn] = {}

    def sync(self, key: str) -> None:
        """Return once a flush of `key` that began after this call was made has succeeded."""
        turn = self._turns.get(key)
        if turn is None:
            with self._lock:
                turn = self._turns.setdefault(key, _Turn())
        with turn.changed:
            turn.asked += 1
            ticket = turn.asked
            while turn.covered < ticket:
                if turn.running:
                    turn.changed.wait()
                    continue
                turn.running, covers = True, turn.asked
                turn.changed.release()
                try:
                    self._flush(key)
                finally:
                    turn.changed.acquire()
                    turn.running = False
                    turn.changed.notify_all()
                turn.covered = max(turn.covered, covers)
