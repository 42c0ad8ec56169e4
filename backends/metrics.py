"""`GET /metrics` for Prometheus (issue 16).

Requests and their latency are counted by every gunicorn worker into files of its own
in PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode), and every worker's
answer sums all the files, so that it does not matter which worker a scrape reaches.
Everything else is read at scrape time from what all workers share: jobs from the
ledger (brought up to date first), queues and queue checks from storage.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator
from ipaddress import ip_address
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from backends.auth import client_address


def _multiprocess_dir() -> Path:
    """The shared folder; prometheus-client reads its place from the environment."""
    path = Path(settings.PROMETHEUS_MULTIPROC_DIR)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


MULTIPROC_DIR = _multiprocess_dir()

from prometheus_client import (  # noqa: E402 - the environment above must be set first
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

# Whatever imported prometheus-client first, these metrics write to the shared files.
values.ValueClass = values.MultiProcessValue()

LABELS = ["endpoint", "method", "status"]
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
REQUESTS = Counter("qlued_http_requests", "HTTP requests answered.", LABELS, registry=None)
LATENCY = Histogram(
    "qlued_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    LABELS,
    registry=None,
)


def endpoint_of(request: HttpRequest) -> str:
    """The URL pattern that answered (`/api/v2/<backend>/get_config`): few values, no ids."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + str(match.route)


class RequestMetricsMiddleware:
    """Outermost: counts and times every answer, the edge's refusals included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        labels = (endpoint_of(request), method, str(response.status_code))
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(time.perf_counter() - started)
        return response


class SharedStateCollector:
    """Jobs per backend from the ledger, queues and spoolers' queue checks from storage."""

    def collect(self) -> Iterator[Metric]:
        from backends.dashboard.selectors import (
            backends_overview,
            jobs_by_backend_and_status,
            refresh_open_jobs,
        )

        refresh_open_jobs()
        yield from _job_metrics(jobs_by_backend_and_status())
        yield from _backend_metrics(backends_overview())


def _job_metrics(counts: dict[str, dict[str, int]]) -> Iterator[Metric]:
    families = {
        None: CounterMetricFamily("qlued_jobs_submitted", "Jobs submitted.", labels=["backend"]),
        "DONE": CounterMetricFamily("qlued_jobs_done", "Jobs done.", labels=["backend"]),
        "ERROR": CounterMetricFamily("qlued_jobs_failed", "Jobs failed.", labels=["backend"]),
        "CANCELLED": CounterMetricFamily(
            "qlued_jobs_cancelled", "Jobs cancelled by their owner.", labels=["backend"]
        ),
    }
    waiting = GaugeMetricFamily(
        "qlued_jobs_open", "Jobs not ended yet, by status.", labels=["backend", "status"]
    )
    for backend, per_status in sorted(counts.items()):
        families[None].add_metric([backend], sum(per_status.values()))
        for status in ("DONE", "ERROR", "CANCELLED"):
            families[status].add_metric([backend], per_status.get(status, 0))
        for status in ("INITIALIZING", "QUEUED", "RUNNING"):
            waiting.add_metric([backend, status], per_status.get(status, 0))
    yield from families.values()
    yield waiting


def _backend_metrics(views: list) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "qlued_backend_queue_depth", "Jobs waiting in the backend's queue.", labels=["backend"]
    )
    age = GaugeMetricFamily(
        "qlued_backend_seconds_since_queue_check",
        "Seconds since the backend's spooler last looked at its queue.",
        labels=["backend"],
    )
    up = GaugeMetricFamily(
        "qlued_backend_operational",
        "1 while the spooler looked within T_TIMEOUT.",
        labels=["backend"],
    )
    for view in views:
        if view.queue_depth is not None:
            depth.add_metric([view.full_name], view.queue_depth)
        if view.seconds_since_check is not None:
            age.add_metric([view.full_name], view.seconds_since_check)
        up.add_metric([view.full_name], 1 if view.status["operational"] else 0)
    yield from (depth, age, up)


def allowed(request: HttpRequest) -> bool:
    """A scraper presents METRICS_TOKEN as a bearer token, or calls from an allowed address."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    presented = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    try:
        address = ip_address(client_address(request))  # X-Forwarded-For of TRUSTED_PROXIES
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        if settings.METRICS_TOKEN:
            refused = HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
            refused["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return refused
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(MULTIPROC_DIR))
    registry.register(SharedStateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
