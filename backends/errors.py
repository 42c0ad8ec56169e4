"""The error vocabulary of the API; one handler in `api.py` turns it into HTTP answers.

Every error answers with a StatusMsgDict (SPEC §4): status "ERROR", the text in
both `detail` and `error_message`, and `job_id` "None" unless a job is named.
"""

from __future__ import annotations

from storage_providers.schemas import status_msg


class QluedError(Exception):
    """Base of every error a user can see."""

    status_code = 500
    detail = "Internal error."
    headers: dict[str, str] = {}  # read-only here; an error that sends headers sets its own

    def __init__(self, detail: str | None = None, *, job_id: str = "None") -> None:
        self.detail = detail or self.detail
        self.job_id = job_id
        super().__init__(self.detail)

    def body(self) -> dict:
        """The StatusMsgDict this error answers with."""
        return status_msg(self.job_id, "ERROR", self.detail, self.detail)


class InvalidParameter(QluedError):
    status_code = 422

    def __init__(self, name: str) -> None:
        super().__init__(f"Missing or invalid parameter: {name}.")


class InvalidCredentials(QluedError):
    status_code = 401
    detail = "Invalid credentials!"


class UnknownBackend(QluedError):
    status_code = 404
    detail = "Unknown back-end!"


class PathNotFound(QluedError):
    status_code = 404
    detail = "Not found."


class MethodNotAllowed(QluedError):
    status_code = 405
    detail = "Method not allowed."


class JobRefused(QluedError):
    """406: the job cannot be accepted (bad shape, storage write failed)."""

    status_code = 406


class JobNotFound(QluedError):
    """406: no such job for this caller on this backend; never says which of the three."""

    status_code = 406
    detail = "Could not find the status file."


class JobFailed(QluedError):
    """406 with the stored status of a job that ended in ERROR."""

    status_code = 406

    def __init__(self, status: dict) -> None:
        self.status = status
        super().__init__(str(status.get("detail", "")), job_id=str(status.get("job_id", "None")))

    def body(self) -> dict:
        return dict(self.status)


class Conflict(QluedError):
    """409: the request does not fit the state of what it names (a job that has ended)."""

    status_code = 409


class TooManyRequests(QluedError):
    """429: a quota is used up; `Retry-After` says when to try again."""

    status_code = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after))}


class TooManyFailedAttempts(TooManyRequests):
    """429: this client address presented too many wrong tokens this minute."""

    def __init__(self, *, retry_after: int) -> None:
        super().__init__("Too many failed attempts. Try again later.", retry_after=retry_after)


class RequestTooLarge(QluedError):
    status_code = 413
    detail = "Request too large."


class LengthRequired(QluedError):
    """411: a chunked body that the server in front did not decode (gunicorn does)."""

    status_code = 411
    detail = "Length required."


class StorageUnavailable(QluedError):
    status_code = 503
    detail = "The storage provider is not reachable right now. Try again later."
