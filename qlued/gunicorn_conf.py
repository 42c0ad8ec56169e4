"""gunicorn settings: access log lines go through the same token redaction as Django's logs."""

from gunicorn.glogging import Logger

from qlued.logs import redact


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
