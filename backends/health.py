"""Probes for load balancers and orchestrators: `/healthz` (alive) and `/readyz` (ready).

`/readyz` answers 503 only when Django's database cannot be reached: every request
needs it. A storage provider that does not answer is one lab's outage, not this
instance's, so it is reported in the body and never takes the instance out of a
balancer. The body names providers, their types and whether they answered: no
login, no address, no error text.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, wait

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from .api import json_response
from .providers import ProviderEntry, active_entries, provider_for

log = logging.getLogger(__name__)


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers HTTP. Touches no database and no storage."""
    return json_response({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers; each active provider's reachability, for information."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        entries = active_entries()
    except DatabaseError as exc:
        log.error("readiness: the database is not reachable (%s)", type(exc).__name__)
        return json_response({"status": "unavailable", "database": "unreachable"}, 503)
    providers = _reachability(entries)
    return json_response({"status": "ready", "database": "ok", "providers": providers})


def _reachability(entries: list[ProviderEntry]) -> dict[str, dict[str, object]]:
    """Each provider listed once, probed in parallel and bounded in time as a whole."""
    if not entries:
        return {}
    limit = settings.MONGODB_SERVER_SELECTION_TIMEOUT + settings.DROPBOX_TIMEOUT + 1
    pool = ThreadPoolExecutor(max_workers=min(8, len(entries)))
    probes = {entry.name: (entry, pool.submit(_answers, entry)) for entry in entries}
    wait([future for _, future in probes.values()], timeout=limit)
    pool.shutdown(wait=False, cancel_futures=True)
    return {
        name: {
            "type": entry.storage_type,
            "reachable": future.done() and not future.cancelled() and future.result(),
        }
        for name, (entry, future) in probes.items()
    }


def _answers(entry: ProviderEntry) -> bool:
    """Whether the provider's medium answers a listing of backend configs."""
    try:
        provider_for(entry).list_backends()
    except Exception as exc:  # any failure means "not reachable"; its text may hold secrets
        log.warning("readiness: provider %s is not reachable (%s)", entry.name, type(exc).__name__)
        return False
    return True
