"""The service under a real gunicorn, as deployed: every /api/ answer is the contract's JSON.

gunicorn runs with the project's config on a free loopback port, in a bare environment
with its own database and storage. Requests are written by hand on a socket, so that
the test controls every byte: request-line length, header size, chunked bodies.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FERMIONS_CONFIG

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
LIMIT = 64 * 1024  # MAX_REQUEST_BYTES of these servers
JOB = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})


def error(detail: str) -> dict:
    return {"job_id": "None", "status": "ERROR", "detail": detail, "error_message": detail}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        assert self.headers["content-type"].startswith("application/json"), self
        return json.loads(self.body)


@dataclass
class Server:
    port: int
    token: str
    home: Path
    proc: subprocess.Popen

    def send(self, raw: bytes, *, timeout: float = 10) -> Answer:
        """Write `raw` on a fresh connection and read the answer until the server closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
            conn.sendall(raw)
            received = b""
            while block := conn.recv(65536):
                received += block
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        if headers.get("transfer-encoding") == "chunked":
            body = dechunk(body)
        return Answer(int(status_line.split()[1]), headers, body)

    def get(self, target: str, *extra: str) -> Answer:
        host = (
            [] if any(line.lower().startswith("host:") for line in extra) else ["Host: 127.0.0.1"]
        )
        lines = [f"GET {target} HTTP/1.1", *host, "Connection: close", *extra]
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def post_chunked(self, target: str, chunks: list[bytes], *, last: bool = True) -> Answer:
        head = (
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
        return self.send(head + body + (b"0\r\n\r\n" if last else b""))


def dechunk(body: bytes) -> bytes:
    """The payload of a chunked answer (gunicorn chunks one that has no Content-Length)."""
    payload = b""
    while True:
        size, _, rest = body.partition(b"\r\n")
        length = int(size.split(b";")[0], 16)
        if length == 0:
            return payload
        payload, body = payload + rest[:length], rest[length + 2 :]


def bare_env(home: Path, **settings: str) -> dict[str, str]:
    env_file = home / "server.env"
    env_file.write_text("")
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "QLUED_ENV_FILE": str(env_file),
        "QLUED_DATA_DIR": str(home / "data"),
        "STATIC_ROOT": str(home / "static"),
        "SECRET_KEY": "gunicorn-test-key",
        "DEBUG": "false",
        "MAX_REQUEST_BYTES": str(LIMIT),
        **settings,
    }


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_server(home: Path, *gunicorn_flags: str, **settings: str) -> Server:
    """Set up a database, provider alqor with a fermions config and a token; then serve."""
    env = bare_env(home, **settings)
    manage(env, "migrate", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    login = json.dumps({"base_path": str(home / "storage")})
    manage(env, "create_storage_provider", "--name", "alqor", "--type", "local",
           "--login", login, "--owner", "alice")  # fmt: skip
    config = home / "fermions.json"
    config.write_text(json.dumps(FERMIONS_CONFIG))
    manage(env, "upload_backend_config", "--provider", "alqor", str(config))
    token = manage(env, "issue_token", "alice").splitlines()[-1]
    log = (home / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            GUNICORN,
            "qlued.wsgi",
            "-c",
            "qlued/gunicorn_conf.py",
            "-b",
            "127.0.0.1:0",
            "-w",
            "1",
            *gunicorn_flags,
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not (found := LISTENING.search((home / "gunicorn.log").read_text())):
        assert proc.poll() is None, (home / "gunicorn.log").read_text()
        assert time.monotonic() < deadline, "gunicorn did not start listening in 30 s"
        time.sleep(0.05)
    return Server(int(found.group(1)), token, home, proc)


def stop(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("gunicorn"))
    yield running
    stop(running)


# ---- long request lines and headers -----------------------------------------------------------


def test_a_5000_character_backend_name_is_the_contracts_404(server):
    answer = server.get("/api/v2/" + "a" * 5000 + "/get_config")

    assert (answer.status, answer.json()) == (404, error("Unknown back-end!"))


def test_a_5000_character_query_reaches_the_service(server):
    target = f"/api/v2/alqor_fermions_simulator/get_job_status?job_id={'f' * 5000}"

    answer = server.get(target, f"Authorization: Bearer {server.token}")

    assert (answer.status, answer.json()) == (406, error("Could not find the status file."))


@pytest.mark.parametrize("path", ["/api/v2/" + "a" * 9000 + "/get_config", "/" + "x" * 9000])
def test_a_request_line_over_gunicorns_limit_is_a_json_414(server, path):
    answer = server.get(path)

    assert (answer.status, answer.json()) == (414, error("Request line too long."))


def test_a_header_over_gunicorns_limit_is_a_json_431(server):
    answer = server.get("/api/v2/backends", "X-Padding: " + "p" * 9000)

    assert (answer.status, answer.json()) == (431, error("Request header fields too large."))


def test_a_malformed_content_length_is_a_json_400(server):
    raw = b"POST /api/v2/alqor_fermions_simulator/post_job HTTP/1.1\r\nHost: x\r\n"
    answer = server.send(raw + b"Content-Length: ten\r\n\r\n")

    assert (answer.status, answer.json()) == (400, error("Bad request."))


# ---- chunked bodies -----------------------------------------------------------------------------


def test_a_chunked_post_job_with_a_small_body_is_accepted(server):
    body = json.dumps({"job": JOB, "token": server.token}).encode()

    answer = server.post_chunked(
        "/api/v2/alqor_fermions_simulator/post_job", [body[:10], body[10:30], body[30:]]
    )

    status = answer.json()
    assert answer.status == 200
    assert status == {
        "job_id": status["job_id"],  # type: ignore[index]
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }
    queued = server.home / "storage/jobs/queued/fermions" / f"{status['job_id']}.json"  # type: ignore[index]
    assert json.loads(queued.read_text())["experiment_0"]["shots"] == 1


def test_a_chunked_body_over_the_limit_is_413_before_it_is_all_sent(server):
    chunks = [b" " * 16384] * 5  # 80 KiB of a body whose end never comes

    answer = server.post_chunked("/api/v2/alqor_fermions_simulator/post_job", chunks, last=False)

    assert (answer.status, answer.json()) == (413, error("Request too large."))


def test_a_chunked_body_over_the_limit_on_qiskits_result_path_says_error(server):
    answer = server.post_chunked(
        "/api/qiskit-cold-atom/alqor_fermions_simulator/get_job_result", [b" " * (LIMIT + 1)]
    )

    assert (answer.status, answer.json()) == (
        413,
        {**error("Request too large."), "status": "error"},
    )


def test_a_malformed_chunk_is_a_json_400(server):
    raw = (
        b"POST /api/v2/alqor_fermions_simulator/post_job HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    )

    answer = server.send(raw)

    assert (answer.status, answer.json()) == (400, error("Bad request."))


# ---- without gunicorn ---------------------------------------------------------------------------


def test_a_chunked_body_no_server_decoded_is_a_json_411(client, db):
    response = client.generic(
        "POST", "/api/v2/alqor_fermions_simulator/post_job", HTTP_TRANSFER_ENCODING="chunked"
    )

    assert (response.status_code, response.json()) == (411, error("Length required."))
