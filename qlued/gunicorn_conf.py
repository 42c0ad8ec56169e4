"""gunicorn settings: checked settings, limits the service can answer, JSON refusals.

- The Django settings are loaded here, in the master, so that a missing or bad
  setting is one line and exit status 1 instead of a worker's traceback.
- Access log lines go through the same token redaction as Django's logs.
- Every answer under /api/ is JSON (SPEC §4): the request line may be as long as
  gunicorn allows, so that the service itself answers long URLs (an over-long
  backend name is 404 `Unknown back-end!`), and what gunicorn still refuses before
  the service sees it (a longer line, an over-long header, a malformed request)
  is answered with the contract's StatusMsgDict instead of gunicorn's HTML page.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from gunicorn import util
from gunicorn.glogging import Logger

from qlued.logs import redact


def _check_settings() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qlued.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.SECRET_KEY  # noqa: B018 - loads (and so checks) every setting
    except ImproperlyConfigured as exc:
        sys.exit(f"ImproperlyConfigured: {exc}")


_check_settings()


class RedactingLogger(Logger):
    """gunicorn's logger, with `token=` values and credentials removed from access lines.

    The atoms of a line are made (and so redacted) only when access logging is on: with
    it off, as by default, a request costs nothing here.
    """

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if key in _CREDENTIALS:
                atoms[key] = "***"
            elif isinstance(value, str):
                atoms[key] = redact(value)
        return atoms


# Atoms of the request's Authorization header: `%({authorization}i)s`, `%({http_authorization}e)s`.
_CREDENTIALS = frozenset({"{authorization}i", "{http_authorization}e"})


REFUSALS = {
    400: "Bad request.",
    403: "Forbidden.",
    414: "Request line too long.",
    417: "Expectation failed.",
    431: "Request header fields too large.",
    501: "Transfer coding not supported.",
}


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own refusal, as a StatusMsgDict (its text stays in gunicorn's log)."""
    detail = REFUSALS.get(status_int, "Request failed." if status_int < 500 else "Internal error.")
    answer = {"job_id": "None", "status": "ERROR", "detail": detail, "error_message": detail}
    body = json.dumps(answer, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# Every worker class answers a refused request through util.write_error; the workers
# are forked from this process, so they inherit the replacement.
util.write_error = write_json_error

logger_class = RedactingLogger
# The longest request line gunicorn accepts (its default is 4094); SPEC §4 asks for
# long URLs to be answered by the service. Header fields keep gunicorn's 8190 bytes.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 100
# gunicorn's control socket defaults to one path per host user, so two servers on
# one machine (a staging and a production copy, a benchmark and its floor) collide.
control_socket_disable = True
