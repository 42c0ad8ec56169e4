"""WSGI entry point (gunicorn qlued.wsgi), which also gives Django chunked request bodies."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qlued.settings")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_BLOCK = 64 * 1024


def _read_at_most(stream: Any, limit: int) -> bytes:
    """Up to `limit` bytes of `stream`, fewer only at its end."""
    buffer = io.BytesIO()
    while buffer.tell() < limit:
        block = stream.read(min(_BLOCK, limit - buffer.tell()))
        if not block:
            break
        buffer.write(block)
    return buffer.getvalue()


def with_dechunked_bodies(app: WSGIApp, limit: int) -> WSGIApp:
    """Django reads a body only as far as CONTENT_LENGTH, so a chunked one looks empty.

    When the server has already decoded the chunks (`wsgi.input_terminated`, as gunicorn
    does), read the body here, at most `limit` + 1 bytes so that a larger one is never
    held whole, and hand it on with its length: the API's edge answers 413 above `limit`.
    """

    def dechunked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return dechunked


application = with_dechunked_bodies(get_wsgi_application(), settings.MAX_REQUEST_BYTES)
