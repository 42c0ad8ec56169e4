"""The provider base class: the job lifecycle, written once.

A concrete provider implements only the primitives (read, write, move, delete,
list) for its medium; every step a job goes through — submit, status, result,
claim, lease, finish, fail, hand back, cancel — is composed here from them, in the
write order of SPEC §7.
"""

from __future__ import annotations

import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, TypeVar

from pydantic import ValidationError

from .errors import AlreadyExists, Corrupt, InvalidName, NotFound
from .names import OBJECT_ID_RE, USER_FOLDER_RE, check_key_id, check_name, is_name, new_object_id
from .schemas import Document, Ending, Lease, initial_status, status_msg, utcnow

log = logging.getLogger(__name__)

CRASH_DETAIL = "The job crashed the spooler."
CANCEL_DETAIL = "Job cancelled by its owner."
FINAL = frozenset({"DONE", "ERROR"})
MAX_ATTEMPTS = 3
QUEUE_BATCH_SECONDS = 1.0

Signer = Callable[[Document], Document]
T = TypeVar("T")


class Place(StrEnum):
    """The logical folders of SPEC §6; each provider maps them onto its medium."""

    CONFIGS = "configs"
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    DELETED = "deleted"
    STATUS = "status"
    RESULTS = "results"
    PUBLIC_KEYS = "public_keys"
    LEASES = "leases"
    ENDINGS = "endings"  # who ends a job: its owner (cancel) or its spooler (improvement)


# Places whose documents belong to one backend (and so carry its display name).
PER_BACKEND = frozenset({Place.QUEUED, Place.FINISHED, Place.STATUS, Place.RESULTS})


@dataclass(frozen=True, slots=True)
class Ref:
    """Where one document lives: its place, its id, and the backend/user it files under."""

    place: Place
    doc_id: str
    display: str = ""
    username: str = ""


@dataclass(slots=True)
class Claim:
    """A job a spooler holds: what it must run and the lease it must keep."""

    job_id: str
    display: str
    job: Document
    owner: str
    attempts: int
    username: str = ""
    claimed_at: datetime | None = None
    cancelled: bool = False  # set when the owner's cancel ended the job instead of its outcome


class CancelOutcome(StrEnum):
    """What a cancel achieved."""

    CANCELLED = "cancelled"  # taken from the queue: it never runs
    CANCELLING = "cancelling"  # it runs: its spooler is told to stop
    TOO_LATE = "too_late"  # it has ended, or its spooler is writing its end


@dataclass(frozen=True, slots=True)
class Sighting:
    """Where a job stood when looked for: QUEUED, RUNNING, DONE or ERROR, and its times."""

    state: str
    detail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


def unwrap(doc: Document) -> Document:
    """The document itself, whether stored plain or as a signed envelope (SPEC §3)."""
    if "payload" in doc and "signature" in doc and "header" in doc:
        payload = doc["payload"]
        if isinstance(payload, dict):
            return payload
    return doc


class StorageProvider(ABC):
    """A storage medium that the API and the spoolers share."""

    storage_type: ClassVar[str]
    # A slow medium keeps what it read of configs and the backend list this long
    # (seconds), in this object; writes through it are seen at once.
    config_cache_seconds: float = 0.0

    def __init__(self, name: str) -> None:
        self.name = check_name(name)
        self._batches: dict[str, tuple[float, deque[str]]] = {}
        self._read_cache: dict[str, tuple[float, object]] = {}
        self._listings: dict[tuple[Place, str], tuple[float, frozenset[str]]] = {}

    # ---- primitives: what a medium must provide --------------------------------
    # Each is called only with a Ref the base has checked (`check_ref`), so a medium
    # never sees a name or an id that could traverse a path or inject into a query.

    @abstractmethod
    def _read(self, ref: Ref) -> Document:
        """The document at `ref`; NotFound when absent."""

    @abstractmethod
    def _write(self, ref: Ref, doc: Document, *, create: bool) -> None:
        """Store `doc` atomically; with `create`, AlreadyExists instead of overwriting."""

    @abstractmethod
    def _move(self, src: Ref, dst: Ref) -> None:
        """Move a document; NotFound when `src` is gone (someone else took it)."""

    @abstractmethod
    def _delete(self, ref: Ref) -> None:
        """Remove a document; a missing one is not an error."""

    @abstractmethod
    def _list_ids(self, place: Place, display: str) -> list[str]:
        """The ids of the documents in a place, in no particular order."""

    @abstractmethod
    def _list_backends(self) -> list[str]:
        """The display names that have a config."""

    def _claim(self, src: Ref, dst: Ref) -> None:
        """Take a queued job away (to `running`, or `deleted` when cancelled) so that exactly
        one taker wins; NotFound otherwise.

        The default is the medium's move, right where a move is atomic (a rename).
        A medium must never leave the job in neither place: when it needs two steps,
        the copy comes before the delete, and the reaper repairs a job left in both.
        """
        self._move(src, dst)

    def _read_many(self, refs: Sequence[Ref]) -> dict[str, Document]:
        """The documents of `refs` (one place and backend) that exist, by id; a medium that
        can read several in one round trip does so."""
        found: dict[str, Document] = {}
        for ref in refs:
            try:
                found[ref.doc_id] = self._read(ref)
            except (NotFound, Corrupt):
                continue
        return found

    def close(self) -> None:  # noqa: B027 - optional hook, most media hold nothing
        """Release clients and connections; the default has none."""

    # ---- the checked primitives everyone else calls -----------------------------

    def check_ref(self, ref: Ref) -> Ref:
        """`ref` when every part of it may reach storage, else InvalidName (SPEC §4)."""
        if not isinstance(ref.place, Place):
            raise InvalidName(f"Unknown place: {ref.place!r}")
        if ref.place is Place.CONFIGS:
            check_name(ref.doc_id)
        elif ref.place is Place.PUBLIC_KEYS:
            check_key_id(ref.doc_id)
        else:
            self.check_job_id(ref.doc_id)
        if ref.place in PER_BACKEND or ref.display:
            check_name(ref.display)
        if ref.username and not USER_FOLDER_RE.fullmatch(ref.username):
            raise InvalidName(f"Invalid user folder: {ref.username!r}")
        return ref

    def read(self, ref: Ref) -> Document:
        """The document at `ref`; NotFound when absent."""
        return self._read(self.check_ref(ref))

    def write(self, ref: Ref, doc: Document, *, create: bool = False) -> None:
        """Store `doc` atomically; with `create`, AlreadyExists instead of overwriting."""
        self._write(self.check_ref(ref), doc, create=create)

    def move(self, src: Ref, dst: Ref) -> None:
        """Move a document; NotFound when `src` is gone (someone else took it)."""
        self._move(self.check_ref(src), self.check_ref(dst))

    def delete(self, ref: Ref) -> None:
        """Remove a document; a missing one is not an error."""
        self._delete(self.check_ref(ref))

    def read_many(
        self, place: Place, doc_ids: Sequence[str], display: str = ""
    ) -> dict[str, Document]:
        """The documents of a place (one backend's) among `doc_ids` that exist, by id."""
        refs = [self.check_ref(Ref(place, doc_id, display)) for doc_id in doc_ids]
        return self._read_many(refs) if refs else {}

    def list_ids(self, place: Place, display: str = "") -> list[str]:
        """The ids of the documents in a place (one backend's, for per-backend places)."""
        if place in PER_BACKEND or display:
            check_name(display)
        return self._list_ids(place, display)

    def list_backends(self) -> list[str]:
        """The display names that have a config, each once, invalid names left out."""
        listed = self._cached("", lambda: sorted(set(filter(is_name, self._list_backends()))))
        return list(listed)

    def _cached(self, key: str, load: Callable[[], T]) -> T:
        """`load()`, or what it gave less than `config_cache_seconds` ago (errors: never kept)."""
        if self.config_cache_seconds <= 0:
            return load()
        now = time.monotonic()
        hit = self._read_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]  # type: ignore[return-value]
        value = load()
        self._read_cache[key] = (now + self.config_cache_seconds, value)
        return value

    def claim(self, display: str, job_id: str) -> None:
        """Take one queued job into `running`; NotFound when another claimer was faster."""
        self.check_job_id(job_id)
        self._claim(self.check_ref(Ref(Place.QUEUED, job_id, display)), Ref(Place.RUNNING, job_id))

    # ---- ids --------------------------------------------------------------------

    def new_job_id(self, display: str, username: str) -> str:
        """A fresh job id; ObjectIds sort by creation time, so the oldest is smallest."""
        return new_object_id()

    def is_job_id(self, job_id: str) -> bool:
        """Whether `job_id` has this provider's job id form (and so may reach storage)."""
        return bool(OBJECT_ID_RE.fullmatch(job_id))

    def check_job_id(self, job_id: str) -> str:
        """`job_id` when well formed, else InvalidName."""
        if not isinstance(job_id, str) or not self.is_job_id(job_id):
            raise InvalidName(f"Invalid job id: {job_id!r}")
        return job_id

    def user_folder(self, username: str) -> str:
        """The per-user path segment of media that file documents by user (Dropbox)."""
        return ""

    def job_user_folder(self, job_id: str) -> str:
        """The per-user segment recovered from a job id (spoolers know no usernames)."""
        return ""

    # ---- configs ----------------------------------------------------------------

    def get_config(self, display: str) -> Document:
        """The stored config of a backend, as a plain document (envelopes unwrapped)."""
        ref = Ref(Place.CONFIGS, check_name(display))
        return dict(self._cached(f"config:{display}", lambda: unwrap(self.read(ref))))

    def upload_config(self, display: str, config: Document, signer: Signer | None = None) -> None:
        """Store a backend config, signed when a signer is given."""
        doc = signer(config) if signer else config
        self.write(Ref(Place.CONFIGS, check_name(display)), doc)
        self._read_cache.pop(f"config:{display}", None)
        self._read_cache.pop("", None)

    def upload_public_key(self, jwk: Document) -> None:
        """Publish a public JWK under its key id."""
        self.write(Ref(Place.PUBLIC_KEYS, jwk["kid"]), jwk)

    def get_public_key(self, kid: str) -> Document:
        """A published public JWK."""
        return self.read(Ref(Place.PUBLIC_KEYS, kid))

    # ---- the API's side of a job ------------------------------------------------

    def submit_job(
        self, display: str, job_id: str, job: Document, *, username: str = ""
    ) -> Document:
        """Write the initial status, then queue the job (SPEC §7.1); return the status.

        The status goes first so that a spooler never finds a job without one, and
        it is created, never overwritten.
        """
        self.check_job_id(job_id)
        folder = self.user_folder(username)
        status = initial_status(job_id)
        self.write(Ref(Place.STATUS, job_id, display, folder), status, create=True)
        self.write(Ref(Place.QUEUED, job_id, display), job, create=True)
        return status

    def withdraw_job(self, display: str, job_id: str, *, username: str = "") -> None:
        """Undo a half-done submission, so that nothing is left for a spooler to find."""
        folder = self.user_folder(username)
        for ref in (Ref(Place.QUEUED, job_id, display), Ref(Place.STATUS, job_id, display, folder)):
            try:
                self.delete(ref)
            except Exception:  # best effort: the answer is already a failure
                log.warning("could not withdraw %s of job %s", ref.place, job_id)

    def get_status(self, display: str, job_id: str, *, username: str = "") -> Document:
        """The job's StatusMsgDict."""
        self.check_job_id(job_id)
        ref = Ref(Place.STATUS, job_id, display, self.user_folder(username))
        return unwrap(self.read(ref))

    def get_result(self, display: str, job_id: str, *, username: str = "") -> Document:
        """The job's result document."""
        self.check_job_id(job_id)
        ref = Ref(Place.RESULTS, job_id, display, self.user_folder(username))
        return unwrap(self.read(ref))

    # ---- the API's side: where jobs stand, and cancelling them ------------------

    def sightings(
        self,
        display: str,
        job_ids: Sequence[str],
        *,
        unstarted: Collection[str] = (),
        max_age: float = 0.0,
    ) -> dict[str, Sighting]:
        """Where each of `job_ids` (jobs of backend `display`) stands, in a few round trips
        whatever their number; a job found nowhere, or between two places, is left out.

        The queue and `running` are listed once (kept `max_age` seconds); statuses and
        ending records are read in bulk for the jobs in neither, leases only for the
        running jobs in `unstarted` (whose start the caller does not know yet).
        """
        check_name(display)
        queued = self._listing(Place.QUEUED, display, max_age)
        running = self._listing(Place.RUNNING, "", max_age)
        seen: dict[str, Sighting] = {i: Sighting("QUEUED") for i in job_ids if i in queued}
        active = [i for i in job_ids if i in running and i not in seen]
        leases = self.read_many(Place.LEASES, [i for i in active if i in unstarted])
        for job_id in active:
            seen[job_id] = Sighting("RUNNING", started_at=_claimed_at(leases.get(job_id)))
        rest = [i for i in job_ids if i not in seen]
        statuses = {i: unwrap(d) for i, d in self.read_many(Place.STATUS, rest, display).items()}
        final = [i for i, doc in statuses.items() if doc.get("status") in FINAL]
        endings = self.read_many(Place.ENDINGS, final)
        for job_id in final:
            seen[job_id] = _final_sighting(statuses[job_id], endings.get(job_id))
        return seen

    def job_document(self, display: str, job_id: str) -> Document | None:
        """The job as posted, wherever its lifecycle has it (queued, running, ended); or None."""
        self.check_job_id(job_id)
        user = self.job_user_folder(job_id)
        places = (
            Ref(Place.QUEUED, job_id, display),
            Ref(Place.RUNNING, job_id),
            Ref(Place.FINISHED, job_id, display, user),
            Ref(Place.DELETED, job_id),
        )
        for ref in places:
            try:
                return self.read(ref)
            except NotFound:
                continue
        return None

    def queue_position(self, display: str, job_id: str, *, max_age: float = 0.0) -> int | None:
        """1 for the job our spooler takes next (the oldest by id); None when not queued."""
        queued = self._listing(Place.QUEUED, check_name(display), max_age)
        if job_id not in queued:
            return None
        return 1 + sum(1 for other in queued if other < job_id and self.is_job_id(other))

    def _listing(self, place: Place, display: str, max_age: float) -> frozenset[str]:
        """The ids in a place, listed at most every `max_age` seconds by this object."""
        now = time.monotonic()
        hit = self._listings.get((place, display))
        if hit is not None and hit[0] > now:
            return hit[1]
        ids = frozenset(self.list_ids(place, display))
        if max_age > 0:
            self._listings[(place, display)] = (now + max_age, ids)
        return ids

    def cancel_job(self, display: str, job_id: str) -> CancelOutcome:
        """Cancel a job for its owner: out of the queue at once, or marked for its spooler.

        A queued job is taken with the claim primitive, so exactly one of a cancel and a
        spooler's claim wins, and it moves to `deleted` with status ERROR. A job that is
        not queued gets an ending record saying that its owner cancelled it, unless its
        spooler's record is there first: a spooler that knows of cancelling stops the
        job; one that does not (sqooler) runs it to its end. NotFound when no status
        says the job exists.
        """
        self.check_job_id(job_id)
        queued = self.check_ref(Ref(Place.QUEUED, job_id, display))
        try:
            self._claim(queued, Ref(Place.DELETED, job_id))
        except NotFound:
            return self._request_cancel(display, job_id)
        self._forget_listings()
        self.delete(Ref(Place.LEASES, job_id))  # what a hand-back left behind, if anything
        self._write_status(display, job_id, _cancelled_status(job_id), None)
        return CancelOutcome.CANCELLED

    def _request_cancel(self, display: str, job_id: str) -> CancelOutcome:
        ref = Ref(Place.ENDINGS, job_id)
        request = Ending(by="owner", requested_at=utcnow())
        try:
            self.write(ref, request.model_dump(mode="json"), create=True)
        except AlreadyExists:
            ending = self._read_ending(job_id)
            return CancelOutcome.CANCELLING if ending and ending.cancels else CancelOutcome.TOO_LATE
        # Our record came first; only a spooler that writes none can have ended the job.
        user = self.job_user_folder(job_id)
        try:
            status = unwrap(self.read(Ref(Place.STATUS, job_id, display, user)))
        except NotFound:
            self.delete(ref)
            raise
        if status.get("status") in FINAL:
            if status.get("detail") == CANCEL_DETAIL:
                # Our own request, already honoured: its spooler stopped the job meanwhile.
                return CancelOutcome.CANCELLED
            self.delete(ref)
            return CancelOutcome.TOO_LATE
        return CancelOutcome.CANCELLING

    def _read_ending(self, job_id: str) -> Ending | None:
        """The ending record of a job; a missing or unreadable one counts as none."""
        try:
            return Ending.model_validate(self.read(Ref(Place.ENDINGS, job_id)))
        except (NotFound, Corrupt, ValidationError):
            return None

    def _forget_listings(self) -> None:
        self._listings.clear()

    # ---- the spooler's side -----------------------------------------------------

    def claim_next(
        self, display: str, *, owner: str, lease_seconds: float | None = None
    ) -> Claim | None:
        """Take the job that has waited longest, atomically, and lease it to `owner`.

        With `lease_seconds` the lease records its own length, which reapers then
        honour; without it, each reaper applies its own.
        """
        fresh = False
        while True:
            batch, listed = self._queue_batch(display, fresh=fresh)
            while batch:
                job_id = batch.popleft()
                try:
                    self.claim(display, job_id)
                except NotFound:
                    continue  # another spooler was faster
                return self._lease(display, job_id, owner, lease_seconds)
            if listed:
                return None
            fresh = True  # the batch ran dry: one look for jobs that came since

    def _queue_batch(self, display: str, *, fresh: bool) -> tuple[deque[str], bool]:
        """The queue's job ids, oldest first, listed at most every QUEUE_BATCH_SECONDS.

        Listing a long queue for every claim costs more than running a small job;
        ids only grow with time, so a batch stays in order, and a job handed back
        under its old id is seen at the next listing.
        """
        now = time.monotonic()
        listed_at, batch = self._batches.get(display, (0.0, deque()))
        if fresh or not batch or now - listed_at > QUEUE_BATCH_SECONDS:
            queued = (i for i in self.list_ids(Place.QUEUED, display) if self.is_job_id(i))
            batch = deque(sorted(queued))  # a stray file in a queue is no job: pass it by
            self._batches[display] = (now, batch)
            return batch, True
        return batch, False

    def _read_lease(self, job_id: str) -> Lease | None:
        """The lease of a job; a missing or unreadable one counts as none."""
        ref = Ref(Place.LEASES, job_id)
        try:
            return Lease.model_validate(self.read(ref))
        except NotFound:
            return None
        except (ValidationError, Corrupt):
            # Leases are rebuildable (and not fsynced): drop a damaged one, so that
            # the reaper adopts the job afresh instead of tripping over it forever.
            log.warning("lease of job %s is damaged: removed", job_id)
            self.delete(ref)
            return None

    def _lease(self, display: str, job_id: str, owner: str, lease_seconds: float | None) -> Claim:
        """Record the lease of a job just claimed and read the job."""
        previous = self._read_lease(job_id)
        attempts = previous.attempts if previous else 0
        lease = Lease(
            display_name=display,
            claimed_at=utcnow(),
            owner=owner,
            attempts=attempts + 1,
            lease_seconds=lease_seconds,
        )
        self.write(Ref(Place.LEASES, job_id), lease.model_dump(mode="json"))
        job = self.read(Ref(Place.RUNNING, job_id))
        user = self.job_user_folder(job_id)
        return Claim(job_id, display, job, owner, lease.attempts, user, lease.claimed_at)

    def holds(self, claim: Claim) -> bool:
        """Whether the lease of `claim` is still ours (it may have been handed back)."""
        lease = self._read_lease(claim.job_id)
        return lease is not None and lease.owner == claim.owner

    def renew(self, claim: Claim) -> bool:
        """Extend our lease; False when it is no longer ours."""
        ref = Ref(Place.LEASES, claim.job_id)
        lease = self._read_lease(claim.job_id)
        if lease is None or lease.owner != claim.owner:
            return False
        lease.renewed_at = utcnow()
        self.write(ref, lease.model_dump(mode="json"))
        return True

    def finish(
        self, claim: Claim, result: Document, detail: str, signer: Signer | None = None
    ) -> bool:
        """Result, then finished folder, then status DONE, then release (SPEC §7.3).

        Returns False, writing nothing, when the lease was lost: the job is then
        someone else's.
        """
        if not self.holds(claim):
            return False
        self._finish_held(claim, result, detail, signer)
        return True

    def _finish_held(
        self, claim: Claim, result: Document, detail: str, signer: Signer | None
    ) -> None:
        user, job_id, display = claim.username, claim.job_id, claim.display
        doc = signer(result) if signer else result
        self.write(Ref(Place.RESULTS, job_id, display, user), doc)
        self._move_if_there(Ref(Place.RUNNING, job_id), Ref(Place.FINISHED, job_id, display, user))
        status = status_msg(job_id, "DONE", detail)
        self.write(Ref(Place.STATUS, job_id, display, user), signer(status) if signer else status)
        self.delete(Ref(Place.LEASES, job_id))

    def conclude(
        self, claim: Claim, result: Document | None, text: str, signer: Signer | None = None
    ) -> str:
        """The built-in spooler's end of a job: its result (DONE, `text` the detail), or its
        failure (ERROR, `text` the reason) when `result` is None, unless its owner cancelled
        it first (CANCELLED). LOST, writing nothing, when the lease is no longer ours."""
        if not self.holds(claim):
            return "LOST"
        if not self.settle(claim):
            self._cancel_running(
                claim.display, claim.job_id, claim.username, claim.claimed_at, signer
            )
            claim.cancelled = True
            return "CANCELLED"
        if result is None:
            self._fail(claim.display, claim.job_id, text, claim.username, signer)
            return "ERROR"
        self._finish_held(claim, result, text, signer)
        return "DONE"

    def settle(self, claim: Claim) -> bool:
        """Take the right to end a job, before its result or failure is written; False when
        its owner cancelled it first (then `stop_cancelled`).

        The ending record is created, never overwritten by a rival, so exactly one of the
        owner's cancel and the spooler's settle wins. It keeps the job's start and end.
        """
        ref = Ref(Place.ENDINGS, claim.job_id)
        ours = Ending(
            by="spooler", owner=claim.owner, started_at=claim.claimed_at, finished_at=utcnow()
        ).model_dump(mode="json")
        try:
            self.write(ref, ours, create=True)
            return True
        except AlreadyExists:
            pass
        theirs = self._read_ending(claim.job_id)
        if theirs is not None and theirs.cancels:
            return False
        self.write(ref, ours)  # left by an earlier run of the job that never ended it
        return True

    def cancel_requested(self, claim: Claim) -> bool:
        """Whether the owner of the job `claim` runs has asked to cancel it."""
        ending = self._read_ending(claim.job_id)
        return ending is not None and ending.cancels

    def stop_cancelled(self, claim: Claim, signer: Signer | None = None) -> bool:
        """End a running job its owner cancelled: to `deleted`, status ERROR saying so."""
        if not self.holds(claim):
            return False
        self._cancel_running(claim.display, claim.job_id, claim.username, claim.claimed_at, signer)
        claim.cancelled = True
        return True

    def _cancel_running(
        self,
        display: str,
        job_id: str,
        user: str,
        started_at: datetime | None,
        signer: Signer | None = None,
    ) -> None:
        request = self._read_ending(job_id)
        ending = Ending(
            by="owner",
            requested_at=request.requested_at if request else None,
            started_at=started_at,
            finished_at=utcnow(),
        )
        self.write(Ref(Place.ENDINGS, job_id), ending.model_dump(mode="json"))
        self._move_if_there(Ref(Place.RUNNING, job_id), Ref(Place.DELETED, job_id))
        self._write_status(display, job_id, _cancelled_status(job_id), signer, user)
        self.delete(Ref(Place.LEASES, job_id))

    def _write_status(
        self, display: str, job_id: str, status: Document, signer: Signer | None, user: str = ""
    ) -> None:
        doc = signer(status) if signer else status
        self.write(Ref(Place.STATUS, job_id, display, user or self.job_user_folder(job_id)), doc)

    def fail(self, claim: Claim, reason: str, signer: Signer | None = None) -> bool:
        """Move a job that broke a rule to `deleted` and give it status ERROR with `reason`."""
        if not self.holds(claim):
            return False
        self._fail(claim.display, claim.job_id, reason, claim.username, signer)
        return True

    def _fail(
        self, display: str, job_id: str, reason: str, user: str, signer: Signer | None = None
    ) -> None:
        self._move_if_there(Ref(Place.RUNNING, job_id), Ref(Place.DELETED, job_id))
        status = status_msg(job_id, "ERROR", reason, reason)
        self.write(Ref(Place.STATUS, job_id, display, user), signer(status) if signer else status)
        self.delete(Ref(Place.LEASES, job_id))

    def _move_if_there(self, src: Ref, dst: Ref) -> None:
        try:
            self.move(src, dst)
        except NotFound:
            log.warning("job %s was no longer in %s", src.doc_id, src.place)

    def reap_expired(self, lease_seconds: float, now: datetime | None = None) -> list[str]:
        """Hand back running jobs whose spooler stopped renewing; fail the ones that keep crashing.

        A running job without any lease (its claimer died between move and lease)
        gets one now, so that it too runs out in time.
        """
        now = now or utcnow()
        handled = []
        for job_id in self.list_ids(Place.RUNNING):
            if self._reap_one(job_id, lease_seconds, now):
                handled.append(job_id)
        return handled

    def _reap_one(self, job_id: str, lease_seconds: float, now: datetime) -> bool:
        ref = Ref(Place.LEASES, job_id)
        lease = self._read_lease(job_id)
        if lease is None or lease.claimed_at is None:
            self._adopt_orphan(job_id, lease, now)
            return False
        expires = lease.expires(lease_seconds)
        if expires is None or expires > now:
            return False
        ending = self._read_ending(job_id)
        if ending is not None and ending.cancels:  # its spooler died after the cancel
            user = self.job_user_folder(job_id)
            self._cancel_running(lease.display_name, job_id, user, lease.claimed_at)
            log.warning("job %s was cancelled while its spooler was gone: cancelled", job_id)
            return True
        if ending is not None:  # a settle whose end was never written: the job runs again
            self.delete(Ref(Place.ENDINGS, job_id))
        if lease.attempts >= MAX_ATTEMPTS:
            self._fail(lease.display_name, job_id, CRASH_DETAIL, self.job_user_folder(job_id))
            log.warning("job %s crashed its spooler %d times: failed", job_id, lease.attempts)
            return True
        # The lease is handed back before the job: a spooler that claims it at once
        # then writes its own lease after ours, never the other way round.
        handed_back = Lease(
            display_name=lease.display_name, claimed_at=None, owner=None, attempts=lease.attempts
        )
        self.write(ref, handed_back.model_dump(mode="json"))
        try:
            self.move(Ref(Place.RUNNING, job_id), Ref(Place.QUEUED, job_id, lease.display_name))
        except NotFound:
            return False  # finished or reaped by someone else meanwhile
        log.warning("lease of job %s ran out: back in the queue", job_id)
        return True

    def _adopt_orphan(self, job_id: str, lease: Lease | None, now: datetime) -> None:
        """Start the clock on a running job nobody has leased; its backend comes from the job."""
        display = lease.display_name if lease else self._display_of_running(job_id)
        if display is None:
            return
        attempts = lease.attempts if lease else 1
        orphan = Lease(display_name=display, claimed_at=now, owner="", attempts=attempts)
        with contextlib.suppress(AlreadyExists):  # its claimer wrote the lease meanwhile
            self.write(
                Ref(Place.LEASES, job_id), orphan.model_dump(mode="json"), create=lease is None
            )

    def _display_of_running(self, job_id: str) -> str | None:
        """The backend of a running job without a lease: the one whose status folder knows it."""
        user = self.job_user_folder(job_id)
        for display in self.list_backends():
            try:
                self.read(Ref(Place.STATUS, job_id, display, user))
            except NotFound:
                continue
            return display
        return None


def _cancelled_status(job_id: str) -> Document:
    return status_msg(job_id, "ERROR", CANCEL_DETAIL, CANCEL_DETAIL)


def _claimed_at(lease: Document | None) -> datetime | None:
    """When a lease says its job was claimed, if it says so readably."""
    if lease is None:
        return None
    try:
        return Lease.model_validate(lease).claimed_at
    except ValidationError:
        return None


def _final_sighting(status: Document, ending: Document | None) -> Sighting:
    """A job that has ended, with the times its ending record keeps (when there is one)."""
    started = finished = None
    if ending is not None:
        with contextlib.suppress(ValidationError):
            record = Ending.model_validate(ending)
            started, finished = record.started_at, record.finished_at
    return Sighting(str(status["status"]), str(status.get("detail", "")), started, finished)
