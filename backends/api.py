"""The endpoints, mounted twice: `/api/v2/` (the contract) and `/api/qiskit-cold-atom/`.

The second mount serves the published qiskit cold-atom client (SPEC §8) with the
same views and domain code; only what the client cannot read is translated, at
the edge: result status words, `data.counts`, the `json` parameter, and the
`status` of a failed get_job_result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import BaseModel

from storage_providers import StorageError

from . import idempotency, selectors, services
from .auth import authenticate
from .errors import (
    InvalidParameter,
    QluedError,
    RequestTooLarge,
    StorageUnavailable,
)
from .schemas import (
    BackendConfigOut,
    BackendStatusOut,
    CancelIn,
    JobDetailOut,
    JobIn,
    JobListOut,
    JobOut,
    JobStatusName,
    ResultOut,
    StatusMsgOut,
)

log = logging.getLogger(__name__)

ERRORS = dict.fromkeys((401, 404, 405, 406, 411, 413, 422, 429, 503), StatusMsgOut)
POST_ERRORS = {**ERRORS, **dict.fromkeys((409, 429), StatusMsgOut)}
CANCEL_ERRORS = {**ERRORS, 409: StatusMsgOut}
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


def json_bytes_response(body: bytes) -> HttpResponse:
    """A 200 of JSON rendered already (cached answers)."""
    return HttpResponse(body, content_type=JSON)


def error_response(error: QluedError, *, result_endpoint: bool = False) -> HttpResponse:
    """The one place an error becomes an HTTP answer."""
    body = error.body()
    if result_endpoint:
        body = {**body, "status": "error"}  # the qiskit client polls until it reads this
    response = json_response(body, error.status_code)
    for name, value in error.headers.items():
        response[name] = value
    return response


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
        return json_bytes_response(selectors.list_backends_json(url_base(request)))

    @api.get("/{backend}/get_config", response={200: BackendConfigOut, **ERRORS})
    def get_config(request: HttpRequest, backend: str) -> HttpResponse:
        found = backend_named(backend)
        return json_bytes_response(selectors.served_config_json(found, url_base(request)))

    @api.get("/{backend}/get_backend_status", response={200: BackendStatusOut, **ERRORS})
    def get_backend_status(request: HttpRequest, backend: str) -> HttpResponse:
        found = backend_named(backend)
        return json_bytes_response(selectors.backend_status_json(found, settings.T_TIMEOUT))

    @api.post(
        "/{backend}/post_job",
        response={200: StatusMsgOut, **POST_ERRORS},
        description=POST_JOB_DOC,
    )
    def post_job(request: HttpRequest, backend: str, data: JobIn) -> HttpResponse:
        key = idempotency.checked_key(request.headers.get(idempotency.HEADER))
        caller = authenticate(presented_token(request, data.token))
        found = backend_named(backend)
        answer = services.submit_job(
            caller=caller, backend=found, job_text=data.job, idempotency_key=key
        )
        return json_response(answer)

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

    _jobs_endpoints(api, backend_named)
    _captured_path_params(api)
    return api


def _captured_path_params(api: NinjaAPI) -> None:
    """Hand plain `str` path parameters (`{backend}`, `{job_id}`) to the views as Django's
    route captured them.

    ninja runs each operation's path parameters through a pydantic model; for a plain
    `str` that can neither change nor refuse what the route matched, and in profiles of
    get_backend_status it cost as much as the view itself. The models stay, unchanged,
    for the OpenAPI schema; parameters with an alias, a constraint or another type keep
    ninja's validation.
    """
    for view in api.default_router.path_operations.values():
        for operation in view.operations:
            for model in operation.models:
                if model.__ninja_param_source__ == "path" and _plain_str_fields(model):
                    names = tuple(model.model_fields)
                    model.resolve = classmethod(_take(names))  # type: ignore[method-assign]


def _plain_str_fields(model: type[BaseModel]) -> bool:
    flat = getattr(model, "__ninja_flatten_map__", {})
    return all(
        field.annotation is str
        and not field.metadata
        and field.alias in (None, name)
        and flat.get(name) == (name,)
        for name, field in model.model_fields.items()
    )


def _take(names: tuple[str, ...]) -> Callable[..., dict[str, str]]:
    def resolve(cls: type, request: HttpRequest, api: NinjaAPI, path_params: dict) -> dict:
        return {name: path_params[name] for name in names}

    return resolve


def _jobs_endpoints(api: NinjaAPI, backend_named: Any) -> None:
    """List, read and cancel one's jobs (issue 14).

    Registered after the `{backend}/...` routes, which Django tries first: a backend
    whose display name is `jobs` keeps `jobs/get_config` and the rest (job ids never
    equal an endpoint's name).
    """

    @api.post(
        "/{backend}/cancel_job",
        response={200: JobOut, **CANCEL_ERRORS},
        summary="Cancel one of your jobs",
        description=CANCEL_DOC,
    )
    def cancel_job(request: HttpRequest, backend: str, data: CancelIn) -> HttpResponse:
        caller = authenticate(presented_token(request, data.token))
        found = backend_named(backend)
        return json_response(services.cancel_job(caller=caller, backend=found, job_id=data.job_id))

    @api.get(
        "/jobs",
        response={200: JobListOut, **ERRORS},
        summary="Your jobs, newest first",
        description=LIST_DOC,
    )
    def list_jobs(
        request: HttpRequest,
        token: str | None = None,
        limit: int = Query(20, ge=1, le=100),
        cursor: str | None = None,
        status: JobStatusName | None = None,
        backend: str | None = None,
        submitted_after: datetime | None = None,
        submitted_before: datetime | None = None,
    ) -> HttpResponse:
        filters = selectors.JobFilters.parse(
            limit=limit,
            cursor=cursor,
            status=status,
            backend=backend,
            submitted_after=submitted_after,
            submitted_before=submitted_before,
        )
        caller = authenticate(presented_token(request, token))
        return json_response(selectors.list_jobs(caller=caller, filters=filters))

    @api.get(
        "/jobs/{job_id}",
        response={200: JobDetailOut, **ERRORS},
        summary="One of your jobs",
        description="The job's record, and `queue_position` while it is queued (1 = next).",
    )
    def get_job(request: HttpRequest, job_id: str, token: str | None = None) -> HttpResponse:
        caller = authenticate(presented_token(request, token))
        return json_response(selectors.one_job(caller=caller, job_id=job_id))


POST_JOB_DOC = (
    "Queue a job. With an `Idempotency-Key` header (up to 255 printable ASCII characters), "
    "the same key from the same user within 24 hours answers the first 200 again and creates "
    "nothing; the key with another job or backend is 422; while its first post is still being "
    "answered, 409. Over a quota (jobs queued or running at once, posts per minute): 429 with "
    "`Retry-After`."
)
CANCEL_DOC = (
    "Body `{job_id, token}`. A queued job leaves the queue at once (`status` CANCELLED); a "
    "running one is marked (`cancel_requested` true) and the built-in spooler stops it between "
    "experiments. Either way its v2 status becomes ERROR `Job cancelled by its owner.`. A job "
    "that has ended, or is being cancelled already, is 409; another user's job answers 406 as "
    "a missing one."
)
LIST_DOC = (
    "Token as `token` or `Authorization: Bearer`. `limit` 1-100 (default 20); `cursor` is "
    "the previous page's `next_cursor`; filters `status`, `backend` (full name), "
    "`submitted_after` and `submitted_before` (ISO 8601; without a zone, UTC). Times are "
    "ISO 8601 UTC; `started_at` and `finished_at` are the built-in spooler's own, or when the "
    "service first saw the change."
)


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
