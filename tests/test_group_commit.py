"""Group commit (issue 15): threads share a flush only when it began after their write.

`GroupSync` is driven here with a flush that the test holds open, so that each case
happens in a known order; `durable_commits` on the SQLite ledger is checked outside a
transaction, where it commits. tests/test_durability.py watches the same under a live
gthread gunicorn with strace.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, transaction

from backends import commits
from backends.models import Job
from storage_providers.groupsync import GroupSync


class HeldFlush:
    """A flush that records each call and waits until the test lets it end."""

    def __init__(self, fail_first: bool = False) -> None:
        self.started: list[str] = []
        self.release = threading.Semaphore(0)
        self.fail_first = fail_first

    def __call__(self, key: str) -> None:
        self.started.append(key)
        assert self.release.acquire(timeout=10), "the test never released the flush"
        if self.fail_first and len(self.started) == 1:
            raise OSError(5, "Input/output error")


def asking(group: GroupSync, outcomes: dict[str, object], name: str) -> threading.Thread:
    def run() -> None:
        try:
            group.sync("folder")
            outcomes[name] = "synced"
        except OSError as exc:
            outcomes[name] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def waiting(group: GroupSync, count: int) -> Callable[[], bool]:
    return lambda: "folder" in group._turns and group._turns["folder"].asked == count


def test_a_flush_that_began_before_a_write_does_not_cover_it():
    flush = HeldFlush()
    group = GroupSync(flush)
    outcomes: dict[str, object] = {}
    first = asking(group, outcomes, "first")
    wait_for(lambda: len(flush.started) == 1)  # the first flush is under way
    late = [asking(group, outcomes, f"late{n}") for n in range(3)]  # wrote after it began
    wait_for(waiting(group, 4))

    flush.release.release()  # the first flush ends
    first.join(timeout=10)
    wait_for(lambda: len(flush.started) == 2)  # one of the late ones runs the second

    assert outcomes == {"first": "synced"}  # the late ones still wait for theirs
    flush.release.release()
    for thread in late:
        thread.join(timeout=10)
    assert outcomes == dict.fromkeys(("first", "late0", "late1", "late2"), "synced")
    assert len(flush.started) == 2  # the three late writes shared one flush


def test_a_failed_flush_fails_its_runner_and_the_waiters_flush_again():
    flush = HeldFlush(fail_first=True)
    group = GroupSync(flush)
    outcomes: dict[str, object] = {}
    runner = asking(group, outcomes, "runner")
    wait_for(lambda: len(flush.started) == 1)
    waiter = asking(group, outcomes, "waiter")
    wait_for(waiting(group, 2))

    flush.release.release()  # the first flush fails
    runner.join(timeout=10)
    wait_for(lambda: len(flush.started) == 2)  # the waiter is not released by a failure
    flush.release.release()
    waiter.join(timeout=10)

    assert isinstance(outcomes["runner"], OSError)
    assert outcomes["waiter"] == "synced"


def test_alone_every_sync_is_a_flush_of_its_own():
    calls: list[str] = []
    group = GroupSync(calls.append)

    for _ in range(3):
        group.sync("a")
    group.sync("b")

    assert calls == ["a", "a", "a", "b"]


# ---- the ledger's commits on SQLite ---------------------------------------------------------


@pytest.fixture
def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("group commit of the log is SQLite's; PostgreSQL groups commits itself")


@pytest.fixture
def log_flushes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Each flush of the log: its path, and how many ledger rows another connection
    could read from the database file when it began (committed ones)."""
    seen: list[tuple[str, int]] = []

    def flush(path: str) -> None:
        with sqlite3.connect(connection.settings_dict["NAME"]) as other:
            (rows,) = other.execute("SELECT count(*) FROM backends_job").fetchone()
        seen.append((path, rows))

    monkeypatch.setattr(commits, "_LOG_SYNC", GroupSync(flush))
    return seen


def synchronous() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        return int(cursor.fetchone()[0])


def row_values(user, provider, job_id: str = "a" * 24) -> dict:  # type: ignore[no-untyped-def]
    return {
        "job_id": job_id,
        "storage_provider_id": provider.pk,
        "display_name": "fermions",
        "owner_id": user.pk,
    }


@pytest.mark.django_db(transaction=True)
def test_a_commit_is_flushed_after_it_is_written_and_full_sync_comes_back(
    sqlite_only, log_flushes, user, local_provider
):
    with commits.durable_commits():
        assert synchronous() == 1  # NORMAL: COMMIT writes the log, the block syncs it
        Job.objects.record(**row_values(user, local_provider))

    assert log_flushes == [(f"{connection.settings_dict['NAME']}-wal", 1)]
    assert synchronous() == 2  # FULL for every other write of the service


@pytest.mark.django_db(transaction=True)
def test_a_refused_row_is_not_flushed_and_full_sync_comes_back(
    sqlite_only, log_flushes, user, local_provider
):
    Job.objects.record(**row_values(user, local_provider))

    with pytest.raises(IntegrityError), commits.durable_commits():
        Job.objects.record(**row_values(user, local_provider))

    assert log_flushes == []
    assert synchronous() == 2


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_block_leaves_the_commit_to_its_end(
    sqlite_only, log_flushes, user, local_provider
):
    with transaction.atomic(), commits.durable_commits():
        assert synchronous() == 2
        Job.objects.record(**row_values(user, local_provider))

    assert log_flushes == []


@pytest.mark.django_db(transaction=True)
def test_a_post_whose_ledger_log_cannot_be_synced_is_refused_and_leaves_nothing(
    sqlite_only, monkeypatch, client, storage, token, storage_path
):
    def broken(path: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(commits, "_LOG_SYNC", GroupSync(broken))
    job = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})

    answer = client.post(
        "/api/v2/alqor_fermions_simulator/post_job",
        {"job": job, "token": token},
        content_type="application/json",
    )

    failed = "The job could not be written to storage. Try again later."
    assert answer.status_code == 406
    assert answer.json() == {
        "job_id": "None", "status": "ERROR", "detail": failed, "error_message": failed
    }  # fmt: skip
    assert Job.objects.count() == 0
    assert not list(storage_path.glob("jobs/queued/*/*.json"))
    assert not list(storage_path.glob("status/*/*.json"))
