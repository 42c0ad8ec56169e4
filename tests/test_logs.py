"""Request logs never contain a token (SPEC §4): the redaction, the handlers, real requests."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
from collections.abc import Iterator

import pytest

from qlued.logs import RedactTokens, redact

SECRET = "Zq9-secret_Token-value-XYZ0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        # query strings
        ("token=abc", "token=***"),
        ("/get_job_status?job_id=1&token=abc", "/get_job_status?job_id=1&token=***"),
        ("/get_job_status?token=abc&job_id=1", "/get_job_status?token=***&job_id=1"),
        ("?username=al&TOKEN=abc", "?username=al&TOKEN=***"),
        ("?token=a-b_c.d~e&token=second", "?token=***&token=***"),
        (
            '"GET /api/v2/x/get_job_result?job_id=1&token=abc HTTP/1.1" 200 17',
            '"GET /api/v2/x/get_job_result?job_id=1&token=*** HTTP/1.1" 200 17',
        ),
        # JSON bodies and Python reprs of them
        ('{"job": "{}", "token": "abc"}', '{"job": "{}", "token": "***"}'),
        ('{"token":"abc","username":"al"}', '{"token":"***","username":"al"}'),
        ('{"token" : "abc"}', '{"token" : "***"}'),
        ("{'job': '{}', 'token': 'abc'}", "{'job': '{}', 'token': '***'}"),
        # Authorization headers
        ("Authorization: Bearer abc", "Authorization: Bearer ***"),
        ("authorization: bearer   abc.def", "authorization: bearer   ***"),
        ("HTTP_AUTHORIZATION='Bearer abc'", "HTTP_AUTHORIZATION='Bearer ***"),
        # left alone
        ("the token was refused", "the token was refused"),
        (
            "/api/v2/alqor_fermions_simulator/get_config",
            "/api/v2/alqor_fermions_simulator/get_config",
        ),
        ("job_id=abc&username=al", "job_id=abc&username=al"),
        ("token=", "token="),
    ],
)
def test_redact_replaces_token_values_and_nothing_else(text, redacted):
    assert redact(text) == redacted


def test_redact_hides_a_real_token_in_every_form():
    forms = [
        f"GET /api/v2/fermions/get_job_status?job_id=1&token={SECRET}",
        json.dumps({"job": "{}", "username": "alice", "token": SECRET}),
        f"Authorization: Bearer {SECRET}",
        repr({"token": SECRET}),
    ]

    assert [SECRET in redact(text) for text in forms] == [False] * 4


def test_the_filter_redacts_the_formatted_message_with_its_arguments():
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /x?token={SECRET}", 200, 5),
        None,
    )

    assert RedactTokens().filter(record) is True
    assert record.getMessage() == '"GET /x?token=***" 200 5'


def test_the_filter_leaves_a_clean_record_untouched():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s jobs", (3,), None)

    RedactTokens().filter(record)

    assert (record.msg, record.args) == ("%s jobs", (3,))


@contextlib.contextmanager
def console_output() -> Iterator[io.StringIO]:
    """What the configured console handler (settings.LOGGING) writes, captured."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactTokens) for f in h.filters)
    ]
    assert handlers, "settings.LOGGING should put the redaction filter on the console handler"
    stream = io.StringIO()
    previous = [h.setStream(stream) for h in handlers]
    try:
        yield stream
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.setStream(old)


@pytest.mark.parametrize("logger", ["django.server", "django.request", "backends.api", "spooler"])
def test_the_configured_handlers_redact_whatever_logger_writes(logger):
    with console_output() as out:
        logging.getLogger(logger).warning(
            '"GET /api/v2/x/get_job_status?token=%s HTTP/1.1"', SECRET
        )

    assert "token=***" in out.getvalue()
    assert SECRET not in out.getvalue()


# ---- real requests --------------------------------------------------------------------------


@pytest.fixture
def everything_logged(caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    return caplog


def logged_text(caplog, out: io.StringIO) -> str:  # type: ignore[no-untyped-def]
    records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    return f"{records}\n{caplog.text}\n{out.getvalue()}"


def test_no_request_puts_a_token_into_the_logs(client, storage, token, everything_logged):
    job = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})
    v2 = "/api/v2/alqor_fermions_simulator"
    with console_output() as out:
        posted = client.post(
            f"{v2}/post_job",
            {"job": job, "token": token, "username": "alice"},
            content_type="application/json",
        )
        job_id = posted.json()["job_id"]
        answers = [
            posted.status_code,
            client.get(f"{v2}/get_job_status", {"job_id": job_id, "token": token}).status_code,
            client.get(f"{v2}/get_job_result", {"job_id": "0" * 24, "token": token}).status_code,
            client.get(f"{v2}/get_job_status", {"job_id": "x", "token": SECRET}).status_code,
            client.get(f"{v2}/get_job_status", {"token": SECRET}).status_code,
            client.get(
                "/api/v2/nobody_x_simulator/get_job_status", {"job_id": "x", "token": token}
            ).status_code,
            client.get("/api/v2/no/such/path", {"token": SECRET}).status_code,
            client.post(
                f"{v2}/post_job", {"job": "nope", "token": SECRET}, content_type="application/json"
            ).status_code,
            client.post(
                f"{v2}/post_job", {"job": "nope", "token": token}, content_type="application/json"
            ).status_code,
            client.get(f"{v2}/post_job", {"token": SECRET}).status_code,
            client.get(
                f"{v2}/get_job_status",
                {"job_id": "x"},
                headers={"Authorization": f"Bearer {SECRET}"},
            ).status_code,
            client.get(
                "/api/qiskit-cold-atom/alqor_fermions_simulator/get_job_status",
                {"json": json.dumps({"job_id": job_id}), "token": token, "username": "alice"},
            ).status_code,
        ]

    assert answers == [200, 200, 406, 401, 422, 404, 404, 401, 406, 405, 401, 200]
    text = logged_text(everything_logged, out)
    assert "django.request" in text  # the 4xx answers were logged, and looked at
    assert SECRET not in text
    assert token not in text


def test_a_storage_failure_is_logged_without_the_token(
    client, storage, token, storage_path, everything_logged
):
    (storage_path / "status").mkdir(exist_ok=True)
    (storage_path / "status/fermions").write_text("in the way")
    job = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})

    with console_output() as out:
        refused = client.post(
            f"/api/v2/alqor_fermions_simulator/post_job?token={SECRET}",
            {"job": job, "token": token},
            content_type="application/json",
        )

    text = logged_text(everything_logged, out)
    assert refused.status_code == 406
    assert "could not be stored" in text
    assert token not in text and SECRET not in text


# ---- gunicorn's access log ------------------------------------------------------------------


def test_gunicorn_access_lines_never_show_a_token(tmp_path):
    from gunicorn.config import Config

    from qlued.gunicorn_conf import RedactingLogger

    log_file = tmp_path / "access.log"
    config = Config()
    config.set("accesslog", str(log_file))
    # every atom that may carry the token: request line, query, URI, headers, environ
    config.set(
        "access_log_format",
        '"%(r)s" %(q)s %(U)s %({authorization}i)s %({http_authorization}e)s '
        "%({query_string}e)s %({raw_uri}e)s %(s)s",
    )
    access = RedactingLogger(config)
    uri = f"/api/v2/fermions/get_job_status?job_id=1&token={SECRET}"

    class Request:
        headers = [("AUTHORIZATION", f"Bearer {SECRET}")]
        query = uri.split("?", 1)[1]
        method, path, version = "GET", uri.split("?", 1)[0], (1, 1)

    Request.uri = uri

    class Response:
        status, sent, headers = "200 OK", 17, []

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": uri,
        "PATH_INFO": Request.path,
        "QUERY_STRING": Request.query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_AUTHORIZATION": f"Bearer {SECRET}",
    }
    access.access(Response(), Request(), environ, datetime.timedelta(milliseconds=3))
    for handler in access.access_log.handlers:
        handler.flush()

    line = log_file.read_text()
    assert "/api/v2/fermions/get_job_status" in line
    assert "token=***" in line and " 200" in line
    assert SECRET not in line
