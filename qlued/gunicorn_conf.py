"""gunicorn settings: checked settings, and access lines with tokens redacted.

- The Django settings are loaded here, in the master, so that a missing or bad
  setting is one line and exit status 1 instead of a worker's traceback.
- Access log lines go through the same token redaction as Django's logs.
"""

from __future__ import annotations

import os
import sys

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
    """gunicorn's logger, with `token=` values removed from access lines."""

    def access(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        environ = dict(environ)
        environ["QUERY_STRING"] = redact(environ.get("QUERY_STRING", ""))
        environ["RAW_URI"] = redact(environ.get("RAW_URI", ""))  # the %(r)s request line
        environ.pop("HTTP_AUTHORIZATION", None)
        if getattr(req, "query", None):
            req.query = redact(req.query)
        if getattr(req, "uri", None):
            req.uri = redact(req.uri)
        super().access(resp, req, environ, request_time)


logger_class = RedactingLogger
# gunicorn's control socket defaults to one path per host user, so two servers on
# one machine (a staging and a production copy, a benchmark and its floor) collide.
control_socket_disable = True
