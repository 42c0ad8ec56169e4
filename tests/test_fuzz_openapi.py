"""Schemathesis fuzzes both mounts through their served OpenAPI schemas (issue 13).

In process, through Django's WSGI application, seeded and bounded: no 500, every
answer conforms to the schema (status code, content type, body), and every error is
the contract's StatusMsgDict. Each generated case is sent twice: as generated, and
with the real backend and a valid token put in, so that the fuzzer also reaches the
code behind authentication and name resolution.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

# Also tells pytest-django that this module's generated items need the test database.
pytestmark = pytest.mark.django_db

EXAMPLES = 15  # per operation and mount: 270 generated cases (540 requests), repeatable
BACKEND = "alqor_fermions_simulator"


def _load(path: str) -> schemathesis.schemas.BaseSchema:
    from qlued.wsgi import application

    return schemathesis.openapi.from_wsgi(path, application)


@pytest.fixture(scope="module", autouse=True)
def _connections_kept_open():  # type: ignore[no-untyped-def]
    """As Django's test client does: requests must not close the test's own connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def v2_schema(django_db_setup, django_db_blocker, _connections_kept_open):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        return _load("/api/v2/openapi.json")


@pytest.fixture(scope="module")
def qiskit_schema(django_db_setup, django_db_blocker, _connections_kept_open):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        return _load("/api/qiskit-cold-atom/openapi.json")


v2 = schemathesis.pytest.from_fixture("v2_schema")
qiskit = schemathesis.pytest.from_fixture("qiskit_schema")

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _error_is_a_status_msg(response) -> None:  # type: ignore[no-untyped-def]
    if response.status_code < 400:
        return
    body = json.loads(response.content)
    assert set(body) == {"job_id", "status", "detail", "error_message"}, body
    assert body["status"] in ("ERROR", "error"), body
    assert body["detail"] == body["error_message"], body


def _with_real_names(case, token: str):  # type: ignore[no-untyped-def]
    """The same case, naming the real backend and carrying a valid token."""
    if case.path_parameters and "backend" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "backend": BACKEND}
    if case.query and "token" in case.query:
        case.query = {**case.query, "token": token}
    if isinstance(case.body, dict) and "token" in case.body:
        case.body = {**case.body, "token": token}
    return case


# The contract refuses, with 422 or 406, values that the schema's types allow: a token
# may come as a header instead (so the schema cannot require it), a job string must
# hold a job, a job must exist. "Schema-valid data is accepted" cannot hold there.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]
SENT = {"requests": 0}


def _run(case, token: str) -> None:  # type: ignore[no-untyped-def]
    for variant in (case, _with_real_names(case, token)):
        response = variant.call()
        SENT["requests"] += 1
        variant.validate_response(response, excluded_checks=EXCLUDED)
        _error_is_a_status_msg(response)


@pytest.fixture
def backend(storage, token) -> str:  # type: ignore[no-untyped-def]
    return token


@v2.parametrize()
@FUZZ
def test_the_v2_mount_holds_to_its_schema(case, backend):
    _run(case, backend)


@qiskit.parametrize()
@FUZZ
def test_the_qiskit_mount_holds_to_its_schema(case, backend):
    _run(case, backend)


def test_the_fuzzers_sent_a_few_hundred_requests():
    """Runs after the two above (file order): the bound is real, not zero."""
    if SENT["requests"] == 0:
        pytest.skip("the fuzz tests did not run in this session")
    assert 300 <= SENT["requests"] <= 1500, SENT
