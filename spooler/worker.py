"""The spooler's loop: look at the queue, claim a job, run it, write back (SPEC §7).

`step()` does one round and says whether it ran a job, so tests drive it directly;
`run()` repeats it until SIGTERM (or `stop()`), always finishing the current job
first. Leases are renewed by a heartbeat thread, so a long simulation keeps its
job; a spooler that dies stops renewing, and another spooler hands the job back.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from storage_providers import Claim, Place, StorageError, StorageProvider
from storage_providers.schemas import Document, utcnow

from .simulators import Backend, JobCancelled, JobRejected

log = logging.getLogger("spooler")

Signer = Callable[[Document], Document]
CRASH_REASON = "The simulator failed on this job; the operator has the details in the log."
# Counting a queue lists it, which on a long queue of a slow medium costs more than a
# small job: the count is taken again only after this many times its last count took.
COUNT_FACTOR = 20
# A queue this short is counted every time: listing it is cheap, and a finished queue
# must read 0 at once (clients and sqooler-era dashboards poll pending_jobs).
SHORT_QUEUE = 100


@dataclass
class SpoolerOptions:
    """How often the spooler does its chores; the defaults suit a lab machine."""

    lease_seconds: float = 600.0
    idle_sleep: float = 0.05  # between empty looks at the queue
    stamp_every: float = 1.0  # last_queue_check is rewritten at most this often
    reap_every: float | None = None  # default: a tenth of the lease, at least 1 s
    cancel_check_every: float = 1.0  # a running job's cancel request is read at most this often


@dataclass
class _Served:
    backend: Backend
    config: Document
    stamped_at: float = field(default=0.0)
    pending: int = 0
    count_due: float = field(default=-math.inf)


class Spooler:
    """Runs the jobs of some backends of one storage provider."""

    def __init__(
        self,
        provider: StorageProvider,
        backends: list[Backend],
        *,
        options: SpoolerOptions | None = None,
        signer: Signer | None = None,
        kid: str | None = None,
    ) -> None:
        self.provider = provider
        self.options = options or SpoolerOptions()
        self.signer = signer
        self.kid = kid
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._served = {b.display_name: _Served(b, self._config_of(b)) for b in backends}
        self._stop = threading.Event()
        self._current: Claim | None = None
        self._renewing = threading.Lock()  # a renewal never lands after finish released the lease
        self._reaped_at = 0.0
        self._turn = 0

    def _config_of(self, backend: Backend) -> Document:
        config = dict(backend.config())
        config.update(sign=self.signer is not None, kid=self.kid)
        return config

    # ---- start -------------------------------------------------------------------

    def announce(self, public_jwk: Document | None = None) -> None:
        """Write every served backend's config (and our public key) into storage."""
        if public_jwk is not None:
            self.provider.upload_public_key(public_jwk)
        for display in self._served:
            self._stamp(display, force=True)
        names = ", ".join(self.full_name(d) for d in self._served)
        log.info(
            "serving %s on %s storage %s (lease %.0f s%s)",
            names,
            self.provider.storage_type,
            self.provider.name,
            self.options.lease_seconds,
            f", signing as {self.kid}" if self.signer else "",
        )

    def full_name(self, display: str) -> str:
        return f"{self.provider.name}_{display}_simulator"

    def _stamp(self, display: str, *, force: bool = False) -> None:
        """Tell the API we are alive: `last_queue_check` (and the queue length) in the config."""
        served = self._served[display]
        now = time.monotonic()
        if not force and now - served.stamped_at < self.options.stamp_every:
            return
        # whole seconds: MongoDB keeps a date to the millisecond, and a signature covers it
        served.config["last_queue_check"] = utcnow().replace(microsecond=0).isoformat()
        served.config["pending_jobs"] = self._pending(display, now)
        self.provider.upload_config(display, served.config, self.signer)
        served.stamped_at = now

    def _pending(self, display: str, now: float) -> int:
        """The queue's length for the config; a long one counted at most every COUNT_FACTOR
        counts' time."""
        served = self._served[display]
        if now >= served.count_due or served.pending < SHORT_QUEUE:
            served.pending = len(self.provider.list_ids(Place.QUEUED, display))
            served.count_due = now + COUNT_FACTOR * (time.monotonic() - now)
        return served.pending

    # ---- the loop ----------------------------------------------------------------

    def step(self) -> bool:
        """One look at each served queue, in turn; run at most one job. True if one ran."""
        self._maybe_reap()
        displays = list(self._served)
        for offset in range(len(displays)):
            display = displays[(self._turn + offset) % len(displays)]
            self._stamp(display)
            claim = self.provider.claim_next(
                display, owner=self.owner, lease_seconds=self.options.lease_seconds
            )
            if claim is not None:
                self._turn = (self._turn + offset + 1) % len(displays)
                self._execute(claim)
                return True
        return False

    def run(self) -> None:
        """Loop until stopped; a failing round is logged and retried, never fatal."""
        # The heartbeat outlives stop(): the job being finished after SIGTERM keeps its lease.
        left = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(left,), name="lease-heartbeat", daemon=True
        )
        heartbeat.start()
        try:
            self._loop()
        finally:
            left.set()
        log.info("stopped")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.step()
            except StorageError as exc:
                log.warning("storage problem, retrying: %s", exc)
                worked = False
                self._stop.wait(min(5.0, 20 * self.options.idle_sleep))
            except Exception:  # e.g. a foreign, malformed lease: one bad document, not fatal
                log.exception("unexpected failure in the spooler's loop, retrying")
                worked = False
                self._stop.wait(min(5.0, 20 * self.options.idle_sleep))
            if not worked:
                self._stop.wait(self.options.idle_sleep)

    def stop(self) -> None:
        """Finish the current job, then leave `run()` (what SIGTERM does)."""
        self._stop.set()

    # ---- one job -----------------------------------------------------------------

    def _execute(self, claim: Claim) -> None:
        """Run a claimed job and write its outcome; any failure ends as status ERROR."""
        served = self._served[claim.display]
        started = time.perf_counter()
        self._current = claim
        result: Document | None = None
        cancelled = False
        text = "Done."
        try:
            result = served.backend.run(
                claim.job, job_id=claim.job_id, checkpoint=self._checkpoint(claim)
            )
            result["backend_name"] = self.full_name(claim.display)
        except JobCancelled:
            cancelled = True
        except JobRejected as exc:
            text = str(exc)
        except Exception:
            log.exception("job %s crashed the simulator", claim.job_id)
            text = CRASH_REASON
        with self._renewing:  # no renewal may land after the end released the lease
            self._current = None
            if cancelled:
                stopped = self.provider.stop_cancelled(claim, self.signer)
                outcome = "CANCELLED" if stopped else "LOST"
            else:
                outcome = self.provider.conclude(claim, result, text, self.signer)
        seconds = time.perf_counter() - started
        if outcome == "LOST":
            outcome = "LOST (lease ran out; the job went back to the queue)"
        log.info("job %s %s %s %.3f s", claim.job_id, claim.display, outcome, seconds)

    def _checkpoint(self, claim: Claim) -> Callable[[], None]:
        """Called between experiments: JobCancelled once the job's owner has cancelled it.

        Storage is asked at most every `cancel_check_every` seconds, so short jobs cost
        no read; a cancel that comes later still wins at the end (`conclude`).
        """
        every = self.options.cancel_check_every
        asked = time.monotonic()

        def check() -> None:
            nonlocal asked
            now = time.monotonic()
            if now - asked < every:
                return
            asked = now
            try:
                requested = self.provider.cancel_requested(claim)
            except StorageError as exc:
                log.warning("could not look for a cancel of job %s: %s", claim.job_id, exc)
                return
            if requested:
                raise JobCancelled()

        return check

    def _heartbeat(self, left: threading.Event) -> None:
        """Renew the lease of the job being run, a few times per lease period, until `run` left."""
        period = max(0.5, self.options.lease_seconds / 4)
        while not left.wait(period):
            with self._renewing:
                claim = self._current
                if claim is None:
                    continue
                try:
                    if not self.provider.renew(claim):
                        log.warning("lost the lease of job %s", claim.job_id)
                except StorageError as exc:
                    log.warning("could not renew the lease of job %s: %s", claim.job_id, exc)

    def _maybe_reap(self) -> None:
        every = self.options.reap_every or max(1.0, self.options.lease_seconds / 10)
        now = time.monotonic()
        if now - self._reaped_at < every:
            return
        self._reaped_at = now
        self.provider.reap_expired(self.options.lease_seconds)
