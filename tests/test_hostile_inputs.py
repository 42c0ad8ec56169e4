"""A table of nasty inputs and the contract's exact answer to each (issue 13, SPEC §3, §4).

In process first (Django's test client), then against a live gunicorn for what only a
real server sees: request lines and headers over its limits, bodies that never end,
a body exactly at MAX_REQUEST_BYTES and one byte over.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from tests.test_operator_gunicorn import LIMIT, Server, dechunk, start_server, stop

BACKEND = "alqor_fermions_simulator"
POST = f"/api/v2/{BACKEND}/post_job"
STATUS = f"/api/v2/{BACKEND}/get_job_status"
RESULT = f"/api/v2/{BACKEND}/get_job_result"
JOB = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})
MISSING = "6b0000000000000000000000"
DEEP = "[" * 100_000 + "]" * 100_000
TOKEN = "<token>"  # replaced by the test user's token


def error(detail: str, job_id: str = "None", status: str = "ERROR") -> dict:
    return {"job_id": job_id, "status": status, "detail": detail, "error_message": detail}


UNKNOWN = (404, error("Unknown back-end!"))
NOT_FOUND = (404, error("Not found."))
REFUSED = (401, error("Invalid credentials!"))
NO_JOB = (406, error("Could not find the status file."))
BAD_BODY = (422, error("Missing or invalid parameter: body."))
NOT_JSON = (406, error("The job is not valid JSON."))
TOO_LARGE = (413, error("Request too large."))


def invalid_job(why: str) -> tuple[int, dict]:
    return 406, error(f"Invalid job: {why}")


def job_of(**experiment: object) -> str:
    return json.dumps(
        {"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1, **experiment}}
    )


# ---- names and ids that must never reach storage --------------------------------------------

NAMES = {
    "traversal": "..",
    "traversal in the display name": "alqor_.._simulator",
    "an encoded slash": "alqor%2Ffermions_simulator",
    "an encoded NUL": "alqor_ferm%00ions_simulator",
    "a space": "alqor_fer%20mions_simulator",
    "upper case": "ALQOR_fermions_simulator",
    "two parts": "alqor_fermions",
    "a wrong suffix": "alqor_fermions_hardware",
    "a 101-character display name": f"alqor_{'f' * 101}_simulator",
    "a 101-character provider name": f"{'a' * 101}_fermions_simulator",
    "300 characters": "a" * 300,
    "10,000 characters": "a" * 10_000,
}


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
@pytest.mark.parametrize("endpoint", ["get_config", "get_backend_status"])
def test_an_odd_backend_name_is_unknown(client, storage, name, endpoint):
    response = client.get(f"/api/v2/{name}/{endpoint}")

    assert (response.status_code, response.json()) == UNKNOWN


SHAPES = {k: v for k, v in NAMES.items() if k != "a wrong suffix"}  # that one needs the config


@pytest.mark.parametrize("name", SHAPES.values(), ids=SHAPES.keys())
def test_an_odd_name_is_404_not_503_while_storage_is_down(client, mongo_backend, name):
    mongo_backend.stop()

    response = client.get(f"/api/v2/{name}/get_config")

    assert (response.status_code, response.json()) == UNKNOWN


JOB_IDS = {
    "traversal": "../../../etc/passwd",
    "a NUL byte": "6b0000000000\x000000000000",
    "an encoded traversal": "..%2F..%2Fstatus",
    "a Mongo operator": '{"$ne": null}',
    "300 characters": "f" * 300,
    "upper-case hex": MISSING.upper(),
    "empty": "",
}


@pytest.mark.parametrize("job_id", JOB_IDS.values(), ids=JOB_IDS.keys())
@pytest.mark.parametrize("url", [STATUS, RESULT])
def test_an_odd_job_id_is_a_missing_job(client, storage, token, job_id, url):
    response = client.get(url, {"job_id": job_id, "token": token})

    assert (response.status_code, response.json()) == NO_JOB


def test_a_well_formed_missing_id_is_named_in_the_answer(client, storage, token):
    response = client.get(STATUS, {"job_id": MISSING, "token": token})

    assert response.json() == error("Could not find the status file.", job_id=MISSING)


# ---- bodies ----------------------------------------------------------------------------------

BODIES = {
    "JSON nested 100,000 deep in the job string": (
        json.dumps({"job": DEEP, "token": TOKEN}).encode(),
        NOT_JSON,
    ),
    "JSON nested 100,000 deep in the body": (
        f'{{"job": {DEEP}, "token": "{TOKEN}"}}'.encode(),
        BAD_BODY,
    ),
    "a body that is not UTF-8": (
        b'{"job": "\xff\xfe", "token": "' + TOKEN.encode() + b'"}',
        BAD_BODY,
    ),
    "a job string that is not UTF-8": (b'{"job": "{\\"e\\": \xc3}", "token": "t"}', BAD_BODY),
    "a body that is not JSON": (b"job=1&token=2", BAD_BODY),
    "an empty body": (b"", BAD_BODY),
    "a JSON array": (b"[]", (422, error("Missing or invalid parameter: job."))),
    "a job that is a number": (
        json.dumps({"job": 5, "token": TOKEN}).encode(),
        (422, error("Missing or invalid parameter: job.")),
    ),
    "a job string holding an array": (
        json.dumps({"job": "[]", "token": TOKEN}).encode(),
        (406, error("The job must be a non-empty JSON object of experiments.")),
    ),
    "a token that is an object": (
        json.dumps({"job": JOB, "token": {}}).encode(),
        (422, error("Missing or invalid parameter: token.")),
    ),
    "a token of one megabyte": (json.dumps({"job": JOB, "token": "t" * 2**20}).encode(), REFUSED),
    "a token with a lone surrogate": (b'{"job": "{}", "token": "\\ud800"}', REFUSED),
    "NaN in the job": (
        json.dumps(
            {
                "job": job_of(instructions=[["load", [0], ["NaN"]]]).replace('"NaN"', "NaN"),
                "token": TOKEN,
            }
        ).encode(),
        invalid_job("experiment_0 holds a number that is not finite."),
    ),
    "Infinity in the job": (
        json.dumps({"job": job_of(seed=1).replace(": 1}", ": Infinity}"), "token": TOKEN}).encode(),
        invalid_job("experiment_0 holds a number that is not finite."),
    ),
    "an integer beyond 64 bits": (
        json.dumps({"job": job_of(shots=2**64), "token": TOKEN}).encode(),
        invalid_job("experiment_0 holds an integer that does not fit in 64 bits."),
    ),
    "a lone surrogate in the job": (
        json.dumps({"job": job_of(instructions=[["\ud800", [0], []]]), "token": TOKEN}).encode(),
        invalid_job("experiment_0 holds a string that is not valid Unicode."),
    ),
}
BAD_NAMES = ["_id", "", "e" * 65, "exp.0", "exp 0", "exp/0", "$where", "ex\x00p"]


@pytest.mark.parametrize(("body", "expected"), BODIES.values(), ids=BODIES.keys())
def test_a_nasty_body_gets_the_contracts_answer_and_stores_nothing(
    client, storage, token, storage_path, body, expected
):
    response = client.post(POST, body.replace(TOKEN.encode(), token.encode()), "application/json")

    assert (response.status_code, response.json()) == expected
    assert _stored(storage_path) == []


@pytest.mark.parametrize("name", BAD_NAMES)
def test_an_experiment_name_mongodb_or_a_spooler_cannot_hold_is_406(
    client, storage, token, storage_path, name
):
    job = json.dumps({name: {"instructions": [], "num_wires": 1, "shots": 1}})

    response = client.post(POST, {"job": job, "token": token}, "application/json")

    why = "experiment names are 1-64 characters of letters, digits, '_' and '-' (not '_id')."
    assert (response.status_code, response.json()) == invalid_job(why)
    assert _stored(storage_path) == []


def test_a_one_megabyte_job_is_stored_exactly_as_posted(client, storage, token, storage_path):
    measures = [["measure", [0], []]] * 60_000
    job = {
        "experiment_0": {
            "instructions": measures,
            "num_wires": 1,
            "shots": 1,
            "wire_order": "interleaved",
        }
    }
    text = json.dumps(job)
    assert len(text) > 2**20

    response = client.post(POST, {"job": text, "token": token}, "application/json")

    assert response.status_code == 200
    queued = storage_path / "jobs/queued/fermions" / f"{response.json()['job_id']}.json"
    assert json.loads(queued.read_bytes()) == job


CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "application/xml",
    "",
    "application/json; charset=utf-8",
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_json_body_is_read_as_json_whatever_its_declared_type(
    client, storage, token, content_type
):
    body = json.dumps({"job": JOB, "token": token}).encode()

    response = client.generic("POST", POST, body, content_type=content_type)

    assert response.status_code == 200
    assert response.json()["status"] == "INITIALIZING"


def test_a_form_encoded_body_is_a_bad_body(client, storage, token):
    response = client.post(POST, {"job": JOB, "token": token})  # multipart/form-data

    assert (response.status_code, response.json()) == BAD_BODY


# ---- repeated parameters and the two places of a token -----------------------------------------


def test_a_repeated_query_parameter_counts_by_its_last_value(client, storage, token):
    other = "6c0000000000000000000000"

    by_last_id = client.get(f"{STATUS}?job_id={MISSING}&job_id={other}&token={token}")
    by_last_token = client.get(f"{STATUS}?job_id={MISSING}&token={token}&token=wrong")

    assert (by_last_id.status_code, by_last_id.json()) == (
        406,
        error("Could not find the status file.", job_id=other),
    )
    assert (by_last_token.status_code, by_last_token.json()) == REFUSED


def test_a_repeated_body_key_counts_by_its_last_value(client, storage, token):
    body = f'{{"job": "[]", "job": {json.dumps(JOB)}, "token": "{token}"}}'

    response = client.post(POST, body, "application/json")

    assert response.status_code == 200


def test_a_token_in_the_field_and_the_header_is_read_from_the_field(client, storage, token):
    in_field = client.post(
        POST, {"job": JOB, "token": token}, "application/json", HTTP_AUTHORIZATION="Bearer wrong"
    )
    in_header = client.post(
        POST,
        {"job": JOB, "token": "wrong"},
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    query = client.get(
        STATUS, {"job_id": MISSING, "token": "wrong"}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert in_field.status_code == 200
    assert (in_header.status_code, in_header.json()) == REFUSED
    assert (query.status_code, query.json()) == REFUSED


# ---- the order of checks: 413 first -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [POST, "/api/v2/nowhere/post_job", f"/api/v2/{'x' * 300}/post_job", "/api/v2/nothing/here"],
)
def test_413_beats_422_401_and_404(client, db, settings, path):
    settings.MAX_REQUEST_BYTES = 1000
    body = b'{"job": 5, "token": "wrong", ' + b" " * 1000  # invalid, wrong token, too large

    response = client.generic("POST", path, body, content_type="application/json")

    assert (response.status_code, response.json()) == TOO_LARGE


def test_413_on_qiskits_result_path_says_error(client, db, settings):
    settings.MAX_REQUEST_BYTES = 10
    path = f"/api/qiskit-cold-atom/{BACKEND}/get_job_result"

    response = client.generic("GET", path, b" " * 11)

    assert (response.status_code, response.json()) == (
        413,
        error("Request too large.", status="error"),
    )


def test_a_body_over_the_limit_is_refused_without_being_read(db, settings):
    """The length alone decides: the body's stream would fail if anything read it."""
    from django.test import RequestFactory

    from qlued.wsgi import application

    class Unreadable:
        def read(self, *args: object) -> bytes:
            raise AssertionError("the body was read")

        readline = read

    environ = RequestFactory().post(POST, b"", content_type="application/json").environ
    environ.update({"CONTENT_LENGTH": str(50 * 2**20), "wsgi.input": Unreadable()})
    started = {}

    def start_response(status: str, headers: list) -> None:
        started["status"] = status

    body = b"".join(application(environ, start_response))

    assert started["status"].startswith("413")
    assert json.loads(body) == TOO_LARGE[1]


# ---- unknown paths and methods, with a client that enforces CSRF --------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize(
    "path",
    ["/api/nothing", "/api/v2/nothing", f"/api/v2/{BACKEND}/nothing/more", "/api/v2/jobs/x/y"],
)
def test_an_unknown_path_is_a_json_404_whatever_the_method_and_csrf(db, method, path):
    browser = Client(enforce_csrf_checks=True)

    response = browser.generic(method, path, b"{}", content_type="application/json")

    assert (response.status_code, response.json()) == NOT_FOUND


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE"])
def test_a_method_an_endpoint_does_not_take_is_405_with_allow(db, method):
    browser = Client(enforce_csrf_checks=True)

    response = browser.generic(method, POST, b"{}", content_type="application/json")

    assert (response.status_code, response.json()) == (405, error("Method not allowed."))
    assert response["Allow"] == "POST"


# ---- storage that is down: 503 on both job endpoints -------------------------------------------


@pytest.fixture
def mongo_backend(mongo, user, settings):  # type: ignore[no-untyped-def]
    """Provider `alqor` on the Mongo-wire server, with a fermions config."""
    from backends.models import StorageProviderDb
    from tests.conftest import FERMIONS_CONFIG, mongodb_provider

    settings.MONGODB_SERVER_SELECTION_TIMEOUT = 0.5
    StorageProviderDb.objects.create(
        name="alqor", storage_type="mongodb", owner=user, login=mongo.login()
    )
    provider = mongodb_provider(mongo)
    provider.upload_config("fermions", json.loads(json.dumps(FERMIONS_CONFIG)))
    provider.close()
    return mongo


def _posted(client, token: str) -> str:  # type: ignore[no-untyped-def]
    response = client.post(POST, {"job": JOB, "token": token}, "application/json")
    assert response.status_code == 200, response.content
    return str(response.json()["job_id"])


UNAVAILABLE = error("The storage provider is not reachable right now. Try again later.")


@pytest.mark.parametrize("mount", ["v2", "qiskit-cold-atom"])
def test_both_job_endpoints_are_503_while_mongodb_is_down(client, mongo_backend, token, mount):
    job_id = _posted(client, token)
    mongo_backend.stop()
    base = f"/api/{mount}/{BACKEND}"

    status = client.get(f"{base}/get_job_status", {"job_id": job_id, "token": token})
    result = client.get(f"{base}/get_job_result", {"job_id": job_id, "token": token})
    post = client.post(f"{base}/post_job", {"job": JOB, "token": token}, "application/json")

    word = "error" if mount == "qiskit-cold-atom" else "ERROR"
    assert (status.status_code, status.json()) == (503, UNAVAILABLE)
    assert (result.status_code, result.json()) == (503, {**UNAVAILABLE, "status": word})
    assert (post.status_code, post.json()) == (503, UNAVAILABLE)


def test_both_job_endpoints_are_503_when_the_folder_is_unusable(
    client, storage, token, storage_path
):
    job_id = _posted(client, token)
    (storage_path / "status").rename(storage_path / "status.moved")
    (storage_path / "status").write_text("a file where a folder was")

    status = client.get(STATUS, {"job_id": job_id, "token": token})
    result = client.get(RESULT, {"job_id": job_id, "token": token})

    assert (status.status_code, status.json()) == (503, UNAVAILABLE)
    assert (result.status_code, result.json()) == (503, UNAVAILABLE)


def _stored(storage_path: Path) -> list[str]:
    """Every job and status document under the provider's folder."""
    found = []
    for folder in ("jobs", "status"):
        found += [str(p) for p in (storage_path / folder).rglob("*") if p.is_file()]
    return found


# ---- against a live gunicorn --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("hostile"))
    yield running
    stop(running)


def _post(server: Server, body: bytes, *headers: str) -> tuple[int, object]:
    head = [
        f"POST {POST} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        "Content-Type: application/json",
        *headers,
    ]
    if not any(h.lower().startswith("content-length") for h in headers):
        head.append(f"Content-Length: {len(body)}")
    answer = server.send(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return answer.status, answer.json()


def _padded(token: str, size: int) -> bytes:
    body = json.dumps({"job": JOB, "token": token}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_a_body_exactly_at_the_limit_is_taken_and_one_byte_more_is_413(server):
    status, answer = _post(server, _padded(server.token, LIMIT))
    over = _post(server, _padded(server.token, LIMIT + 1))

    assert status == 200 and answer["status"] == "INITIALIZING"  # type: ignore[index]
    assert over == TOO_LARGE


def test_a_50_megabyte_body_is_413_before_it_is_sent(server):
    head = (
        f"POST {POST} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {50 * 2**20}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(head + b"{" + b" " * 65536)  # 64 KiB of the 50 MiB promised
        received = b""
        while block := conn.recv(65536):
            received += block

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(dechunk(body) if b"chunked" in head else body) == TOO_LARGE[1]
    assert time.monotonic() - started < 5


def test_a_one_megabyte_token_in_the_query_or_a_header_is_refused_in_json(server):
    in_query = server.get(f"{STATUS}?job_id={MISSING}&token={'t' * 2**20}")
    in_header = server.get(f"{STATUS}?job_id={MISSING}", f"Authorization: Bearer {'t' * 2**20}")

    assert (in_query.status, in_query.json()) == (414, error("Request line too long."))
    assert (in_header.status, in_header.json()) == (431, error("Request header fields too large."))


def test_a_10000_character_name_is_gunicorns_json_414(server):
    answer = server.get(f"/api/v2/{'a' * 10_000}/get_config")

    assert (answer.status, answer.json()) == (414, error("Request line too long."))


GUNICORN_REFUSES = {
    "more header fields than it takes": (
        "GET /api/v2/backends HTTP/1.1\r\nHost: x\r\n"
        + "".join(f"X-H{i}: v\r\n" for i in range(120)),
        (431, error("Request header fields too large.")),
    ),
    "a method that is not a token": (
        "G(T /api/v2/backends HTTP/1.1\r\nHost: x\r\n",
        (400, error("Bad request.")),
    ),
    "an unknown HTTP version": (
        "GET /api/v2/backends HTTP/9.9\r\nHost: x\r\n",
        (400, error("Bad request.")),
    ),
    "a negative Content-Length": (
        f"POST {POST} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n",
        (400, error("Bad request.")),
    ),
    "two different Content-Lengths": (
        f"POST {POST} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n",
        (400, error("Bad request.")),
    ),
    "Content-Length beside chunked": (
        f"POST {POST} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        (400, error("Bad request.")),
    ),
    "a header without a colon": (
        "GET /api/v2/backends HTTP/1.1\r\nHost: x\r\nnonsense\r\n",
        (400, error("Bad request.")),
    ),
    "a NUL in the request line": (
        "GET /api/v2/back\x00ends HTTP/1.1\r\nHost: x\r\n",
        (400, error("Bad request.")),
    ),
}


@pytest.mark.parametrize(
    ("raw", "expected"), GUNICORN_REFUSES.values(), ids=GUNICORN_REFUSES.keys()
)
def test_what_gunicorn_refuses_itself_is_the_contracts_json(server, raw, expected):
    answer = server.send((raw + "\r\n").encode("latin-1"))

    assert (answer.status, answer.json()) == expected
