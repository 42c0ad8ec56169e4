"""The endpoints, mounted twice: `/api/v2/` (the contract) and `/api/qiskit-cold-atom/`.

The second mount serves the published qiskit cold-atom client (SPEC §8) with the
same views and domain code; only what the client cannot read is translated, at
the edge: result status words, `data.counts`, the `json` parameter, and the
`status` of a failed get_job_result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from storage_providers import StorageError

from . import selectors, services
from .auth import authenticate
from .errors import (
    InvalidParameter,
    QluedError,
    RequestTooLarge,
    StorageUnavailable,
)
from .schemas import BackendConfigOut, BackendStatusOut, JobIn, ResultOut, StatusMsgOut

log = logging.getLogger(__name__)

ERRORS = dict.fromkeys((401, 404, 406, 413, 422, 503), StatusMsgOut)
JSON = "application/json"
WRAPPERS = {"query", "body", "path", "header", "data", "form"}


@dataclass(frozen=True)
class Mount:
    """Where a copy of the endpoints lives and whether it speaks to the qiskit client."""

    prefix: str
    namespace: str
    qiskit: bool = False


def json_response(data: Any, status: int = 200) -> HttpResponse:
    """A JSON answer, rendered without a second validation pass (the data is ours)."""
    return HttpResponse(orjson.dumps(data), status=status, content_type=JSON)


def error_response(error: QluedError, *, result_endpoint: bool = False) -> HttpResponse:
    """The one place an error becomes an HTTP answer."""
    body = error.body()
    if result_endpoint:
        body = {**body, "status": "error"}  # the qiskit client polls until it reads this
    return json_response(body, error.status_code)


def is_qiskit_result_path(path: str) -> bool:
    """Whether `path` is the qiskit mount's get_job_result, whose failures say `status "error"`."""
    return path.startswith(QISKIT.prefix) and path.rstrip("/").endswith("/get_job_result")


def presented_token(request: HttpRequest, given: str | None) -> str:
    """The token from the query or body, else from `Authorization: Bearer`."""
    if given:
        return given
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    raise InvalidParameter("token")


def parameter_name(exc: NinjaValidationError) -> str:
    """The name of the first parameter ninja refused."""
    for error in exc.errors:
        names = [str(p) for p in error.get("loc", ()) if str(p) not in WRAPPERS]
        names = [n for n in names if not n.isdigit()]
        if names:
            return names[0]
    return "body"


def make_api(mount: Mount) -> NinjaAPI:
    """The endpoints of SPEC §4 under `mount`."""
    api = NinjaAPI(
        title="qlued" if not mount.qiskit else "qlued for qiskit-cold-atom",
        version="2.0.0",
        description="Cloud access to cold-atom simulators and hardware.",
        urls_namespace=mount.namespace,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    _handlers(api, mount)

    def url_base(request: HttpRequest) -> str:
        origin = settings.BASE_URL or f"{request.scheme}://{request.get_host()}"
        return f"{origin}{mount.prefix}"

    def backend_named(name: str) -> selectors.Backend:
        return selectors.resolve_backend(name, settings.DEFAULT_STORAGE)

    result_model = dict[str, Any] if mount.qiskit else ResultOut | StatusMsgOut
    status_model = dict[str, Any] if mount.qiskit else StatusMsgOut

    @api.get("/backends", response=list[BackendConfigOut], summary="Every backend's config")
    def backends(request: HttpRequest) -> HttpResponse:
        return json_response(selectors.list_backends(url_base(request)))

    @api.get("/{backend}/get_config", response={200: BackendConfigOut, **ERRORS})
    def get_config(request: HttpRequest, backend: str) -> HttpResponse:
        found = backend_named(backend)
        return json_response(selectors.served_config(found, url_base(request)))

    @api.get("/{backend}/get_backend_status", response={200: BackendStatusOut, **ERRORS})
    def get_backend_status(request: HttpRequest, backend: str) -> HttpResponse:
        found = backend_named(backend)
        return json_response(selectors.backend_status(found, settings.T_TIMEOUT))

    @api.post("/{backend}/post_job", response={200: StatusMsgOut, **ERRORS})
    def post_job(request: HttpRequest, backend: str, data: JobIn) -> HttpResponse:
        caller = authenticate(presented_token(request, data.token))
        found = backend_named(backend)
        return json_response(services.submit_job(caller=caller, backend=found, job_text=data.job))

    if mount.qiskit:

        @api.get("/{backend}/get_job_status", response={200: status_model, **ERRORS})
        def get_job_status_qiskit(
            request: HttpRequest,
            backend: str,
            job_id: str | None = None,
            token: str | None = None,
            json_param: str | None = Query(None, alias="json"),
        ) -> HttpResponse:
            caller = authenticate(presented_token(request, token))
            found = backend_named(backend)
            job_id = job_id if job_id is not None else _job_id_from_json(json_param)
            return json_response(selectors.job_status(caller, found, job_id))

    else:

        @api.get("/{backend}/get_job_status", response={200: status_model, **ERRORS})
        def get_job_status(
            request: HttpRequest, backend: str, job_id: str, token: str | None = None
        ) -> HttpResponse:
            caller = authenticate(presented_token(request, token))
            found = backend_named(backend)
            return json_response(selectors.job_status(caller, found, job_id))

    @api.get("/{backend}/get_job_result", response={200: result_model, **ERRORS})
    def get_job_result(
        request: HttpRequest, backend: str, job_id: str, token: str | None = None
    ) -> HttpResponse:
        caller = authenticate(presented_token(request, token))
        found = backend_named(backend)
        answer = selectors.job_result(caller, found, job_id)
        if mount.qiskit and answer["status"] == "DONE" and "results" in answer:
            answer = {**selectors.with_counts(answer), "status": "finished"}
        return json_response(answer)

    return api


def _job_id_from_json(text: str | None) -> str:
    """The job id of qiskit's `json={"job_id": ...}` parameter."""
    try:
        job_id = orjson.loads(text or "")["job_id"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        raise InvalidParameter("job_id") from None
    if not isinstance(job_id, str):
        raise InvalidParameter("job_id")
    return job_id


def _handlers(api: NinjaAPI, mount: Mount) -> None:
    """Every failure of this mount answers through `error_response`."""

    def answer(request: HttpRequest, error: QluedError) -> HttpResponse:
        return error_response(error, result_endpoint=is_qiskit_result_path(request.path_info))

    @api.exception_handler(QluedError)
    def on_qlued_error(request: HttpRequest, exc: QluedError) -> HttpResponse:
        return answer(request, exc)

    @api.exception_handler(NinjaValidationError)
    def on_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return answer(request, InvalidParameter(parameter_name(exc)))

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # ninja raises 400 for a body that is not JSON: a malformed parameter to us
        return answer(request, InvalidParameter("body"))

    @api.exception_handler(StorageError)
    def on_storage_error(request: HttpRequest, exc: StorageError) -> HttpResponse:
        log.warning("storage failure on %s: %s", request.path, exc)
        return answer(request, StorageUnavailable())

    @api.exception_handler(Exception)
    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        if isinstance(exc, RequestDataTooBig):
            return answer(request, RequestTooLarge())
        log.exception("unexpected error on %s", request.path)
        return answer(request, QluedError())


V2 = Mount(prefix="/api/v2/", namespace="api-v2")
QISKIT = Mount(prefix="/api/qiskit-cold-atom/", namespace="api-qiskit", qiskit=True)
v2_api = make_api(V2)
qiskit_api = make_api(QISKIT)
