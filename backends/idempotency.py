"""Idempotency-Key on post_job (issue 14): a retried post gets the first answer, no new job.

A key belongs to one user for 24 hours and to one request: the same backend and the
same job string. Its row is created before the job; the unique constraint decides
which of two concurrent posts creates the job, and the other waits for its answer
(409 if it takes too long). Only a 200 is remembered: a refused post forgets its key.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from .auth import Caller
from .errors import Conflict, InvalidParameter
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"[\x20-\x7e]{1,255}")  # printable ASCII, as HTTP headers carry it
KEPT = timedelta(hours=24)
ABANDONED = timedelta(minutes=10)  # a post unanswered this long died with its worker
WAIT_SECONDS = 5.0  # for a concurrent post with the same key to get its answer
POLL_SECONDS = 0.05
IN_FLIGHT = "A post with this Idempotency-Key is still being answered. Try again in a moment."


def checked_key(value: str | None) -> str | None:
    """The header's key, or None when absent; 422 when it cannot be one."""
    if value is None:
        return None
    if not KEY_RE.fullmatch(value) or not value.strip():
        raise InvalidParameter(HEADER)
    return value


def fingerprint(backend_name: str, job_text: str) -> str:
    """What makes two posts the same request: the backend and the exact job string."""
    request = f"{backend_name}\0{job_text}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(request).hexdigest()


def _fresh(caller: Caller, key: str):  # type: ignore[no-untyped-def]
    since = timezone.now() - KEPT
    return IdempotencyKey.objects.filter(owner_id=caller.user_id, key=key, created_at__gte=since)


def replay(caller: Caller, key: str, print_: str) -> dict | None:
    """The remembered answer to this very request, if there is one."""
    row = _fresh(caller, key).first()
    if row is not None and row.response and row.fingerprint == print_:
        return _answer(row)
    return None


def reserve(caller: Caller, key: str, print_: str) -> IdempotencyKey | dict:
    """Hold `key` for this post, or the answer of the post that holds it (waited for).

    422 when the key was used for another request, 409 when its post is still running.
    """
    stale = timezone.now() - KEPT
    IdempotencyKey.objects.filter(owner_id=caller.user_id, created_at__lt=stale).delete()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    owner_id=caller.user_id, key=key, fingerprint=print_
                )
        except IntegrityError:
            pass
        held = _fresh(caller, key).first()
        if held is not None and held.fingerprint != print_:
            raise InvalidParameter(HEADER)
        if held is not None and held.response:
            return _answer(held)
        if held is not None and held.created_at < timezone.now() - ABANDONED:
            held.delete()  # its worker died before answering: the key is free again
            continue
        if time.monotonic() > deadline:
            raise Conflict(IN_FLIGHT)
        if held is not None:  # else its post was refused and forgot the key: at once again
            time.sleep(POLL_SECONDS)


def remember(row: IdempotencyKey, answer: dict) -> None:
    row.response = orjson.dumps(answer).decode()
    row.save(update_fields=["response"])


def _answer(row: IdempotencyKey) -> dict:
    """The remembered answer, in its keys' order (orjson writes them back the same)."""
    return dict(orjson.loads(row.response))
