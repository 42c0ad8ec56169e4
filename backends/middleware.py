"""The API's edge: tidy paths, refuse oversized bodies, and keep every /api/ answer JSON."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from storage_providers.schemas import status_msg

from . import auth
from .api import error_response, is_qiskit_result_path, json_response
from .errors import LengthRequired, MethodNotAllowed, RequestTooLarge

SLASHES = re.compile(r"/{2,}")
# Pages under /api/ that are not JSON by design.
NOT_JSON_OK = ("/api/v2/docs", "/api/qiskit-cold-atom/docs")
REASONS = {
    301: "Moved permanently.",  # SECURE_SSL_REDIRECT: plain HTTP to https
    400: "Bad request.",
    403: "Forbidden.",
    404: "Not found.",
    405: "Method not allowed.",
    500: "Internal error.",
}


class ApiEdgeMiddleware:
    """Runs first: repeated slashes count as one (SPEC §8), body limits (413, 411), JSON errors.

    It also notes the client's address, to which wrong tokens are counted (`auth`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        address = auth.client.set(auth.client_address(request))  # whom failed tokens count to
        try:
            return self._answer(request)
        finally:
            auth.client.reset(address)

    def _answer(self, request: HttpRequest) -> HttpResponse:
        if "//" in request.path_info:
            request.path_info = SLASHES.sub("/", request.path_info)
            request.path = SLASHES.sub("/", request.path)
        is_api = request.path_info.startswith("/api/")
        if is_api:
            # Tokens, not cookies, authenticate under /api/ (SPEC §4: CSRF does not apply),
            # so an unknown path posted without a CSRF token is 404, not 403.
            request.csrf_processing_done = True  # type: ignore[attr-defined]
        if is_api and _content_length(request) > settings.MAX_REQUEST_BYTES:
            return error_response(RequestTooLarge(), result_endpoint=_qiskit_result(request))
        if is_api and _undecoded_chunks(request):
            return error_response(LengthRequired(), result_endpoint=_qiskit_result(request))
        response = self.get_response(request)
        if is_api and not _is_json(response) and not request.path_info.startswith(NOT_JSON_OK):
            return _as_json(response, result_endpoint=_qiskit_result(request))
        return response


def _qiskit_result(request: HttpRequest) -> bool:
    return is_qiskit_result_path(request.path_info)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _undecoded_chunks(request: HttpRequest) -> bool:
    """A chunked body without a length: qlued.wsgi gives one to every body gunicorn decoded."""
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked and not request.META.get("CONTENT_LENGTH")


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _as_json(response: HttpResponse, *, result_endpoint: bool) -> HttpResponse:
    """A StatusMsgDict in place of a framework's HTML or empty answer."""
    code = response.status_code
    if code == 405:
        answer = error_response(MethodNotAllowed(), result_endpoint=result_endpoint)
    else:
        detail = REASONS.get(code, "Request failed." if code >= 400 else "OK.")
        word = "error" if result_endpoint and code != 200 else "ERROR"
        answer = json_response(status_msg("None", word, detail, detail), code)
    for kept in ("Allow", "Location"):
        if kept in response:
            answer[kept] = response[kept]
    return answer
