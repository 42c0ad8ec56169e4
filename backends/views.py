"""Plain Django views outside the ninja mounts."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse

from .api import error_response, is_qiskit_result_path
from .errors import PathNotFound, UnknownBackend

ENDPOINT_PATH = re.compile(
    r"^/api/(v2|qiskit-cold-atom)/.+/"
    r"(get_config|get_backend_status|post_job|get_job_status|get_job_result|cancel_job)/?$"
)


def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """JSON 404 under /api/; an endpoint path with an impossible name is an unknown backend."""
    error = UnknownBackend() if ENDPOINT_PATH.match(request.path_info) else PathNotFound()
    return error_response(error, result_endpoint=is_qiskit_result_path(request.path_info))
