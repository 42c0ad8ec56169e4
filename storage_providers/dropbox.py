"""A Dropbox app folder in the layout of SPEC §6, shared with sqooler's Dropbox spoolers.

Every document is one JSON file under `/Backend_files`. Statuses live under the
literal folder `None` (where sqooler 0.9.0 reads and writes them); finished jobs
and results under the user segment of the job id, which is the username reduced
to `[A-Za-z0-9_]`. A claim is `files/move_v2` from the queue to `Running_Jobs`,
which exactly one claimer wins (the others get `from_lookup/not_found`).

One SDK client per provider object, built with the refresh token: the SDK renews
its access token itself when less than five minutes remain or when Dropbox says
it expired, never per operation.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from .base import PER_BACKEND, Place, Ref, StorageProvider
from .errors import AccessDenied, AlreadyExists, Corrupt, NotFound, StorageError, Unavailable
from .names import DROPBOX_JOB_ID_RE
from .schemas import Document, utcnow

if TYPE_CHECKING:
    from dropbox import Dropbox

log = logging.getLogger(__name__)

ROOT = "/Backend_files"
STATUS_FOLDER = "None"  # sqooler 0.9.0 files every status here, whatever the user (SPEC §6)

T = TypeVar("T")


@dataclass(frozen=True)
class DropboxOptions:
    """Timeouts and patience with Dropbox, in seconds."""

    timeout: float = 10.0
    retry_after_budget: float = 2.0  # a 429 asking to wait longer than this is a 503
    config_cache_seconds: float = 5.0


def user_segment(username: str) -> str:
    """The username as it appears in job ids and paths: every character outside
    `[A-Za-z0-9_]` becomes `_` (spoolers split ids at `-` and names at `.`)."""
    reduced = re.sub(r"[^A-Za-z0-9_]", "_", username)[:150]
    return reduced or "_"


class DropboxProvider(StorageProvider):
    """Documents as JSON files in a Dropbox app folder."""

    storage_type = "dropbox"

    def __init__(
        self,
        name: str,
        *,
        app_key: str,
        app_secret: str,
        refresh_token: str,
        options: DropboxOptions | None = None,
    ) -> None:
        super().__init__(name)
        self._login = (app_key, app_secret, refresh_token)
        self.options = options or DropboxOptions()
        self.config_cache_seconds = self.options.config_cache_seconds
        self._client: Dropbox | None = None

    def __repr__(self) -> str:  # never the secrets
        return f"<DropboxProvider {self.name}>"

    # ---- ids -----------------------------------------------------------------------

    def new_job_id(self, display: str, username: str) -> str:
        """`{UTC %Y%m%d_%H%M%S}-{display}-{user segment}-{5 hex}`, oldest first by id."""
        stamp = utcnow().strftime("%Y%m%d_%H%M%S")
        return f"{stamp}-{display}-{user_segment(username)}-{secrets.token_hex(3)[:5]}"

    def is_job_id(self, job_id: str) -> bool:
        return bool(DROPBOX_JOB_ID_RE.fullmatch(job_id))

    def user_folder(self, username: str) -> str:
        return user_segment(username) if username else ""

    def job_user_folder(self, job_id: str) -> str:
        return job_id.split("-")[2]

    # ---- the client ----------------------------------------------------------------

    @property
    def client(self) -> Dropbox:
        if self._client is None:
            import dropbox

            app_key, app_secret, refresh_token = self._login
            self._client = dropbox.Dropbox(
                app_key=app_key,
                app_secret=app_secret,
                oauth2_refresh_token=refresh_token,
                timeout=self.options.timeout,
                max_retries_on_error=0,  # a 5xx is a 503 now, not after a minute of backoff
                max_retries_on_rate_limit=0,  # 429s are ours to honour (`_call`)
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, what: str, operation: Callable[[Dropbox], T]) -> T:
        """Run one SDK call; a 429 is waited out once when Dropbox asks for little enough."""
        from dropbox.exceptions import RateLimitError

        with _translated(what):
            try:
                return operation(self.client)
            except RateLimitError as exc:
                wait = exc.backoff if exc.backoff is not None else 1.0
                if wait > self.options.retry_after_budget:
                    raise Unavailable(f"Dropbox is rate limiting us ({what}).") from None
                time.sleep(wait)
            try:
                return operation(self.client)
            except RateLimitError:
                raise Unavailable(f"Dropbox is rate limiting us ({what}).") from None

    # ---- paths ---------------------------------------------------------------------

    def _path(self, ref: Ref) -> str:
        """The file of `ref`; the base has checked every part of it (`check_ref`)."""
        doc_id, display = ref.doc_id, ref.display
        match ref.place:
            case Place.CONFIGS:
                return f"{ROOT}/Config/{doc_id}/config.json"
            case Place.PUBLIC_KEYS:
                return f"{ROOT}/public_keys/{doc_id}.json"
            case Place.STATUS:
                return f"{ROOT}/Status/{display}/{STATUS_FOLDER}/status-{doc_id}.json"
            case Place.FINISHED:
                user = self.job_user_folder(doc_id)
                return f"{ROOT}/Finished_Jobs/{display}/{user}/job-{doc_id}.json"
            case Place.RESULTS:
                user = self.job_user_folder(doc_id)
                return f"{ROOT}/Result/{display}/{user}/result-{doc_id}.json"
        folder, prefix = _FOLDERS[ref.place]
        if ref.place in PER_BACKEND:
            folder = f"{folder}/{display}"
        return f"{folder}/{prefix}{doc_id}.json"

    # ---- primitives ----------------------------------------------------------------

    def _read(self, ref: Ref) -> Document:
        path = self._path(ref)
        _, response = self._call("read", lambda c: c.files_download(path))
        try:
            doc = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise Corrupt(f"{ref.place} {ref.doc_id} is not JSON") from None
        finally:
            response.close()
        if not isinstance(doc, dict):
            raise NotFound(f"{ref.place} {ref.doc_id} is not a document")
        return doc

    def _write(self, ref: Ref, doc: Document, *, create: bool) -> None:
        from dropbox.files import WriteMode

        path = self._path(ref)
        data = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
        mode = WriteMode.add if create else WriteMode.overwrite
        self._call("write", lambda c: c.files_upload(data, path, mode=mode, mute=True))

    def _move(self, src: Ref, dst: Ref) -> None:
        source, target = self._path(src), self._path(dst)
        try:
            self._call("move", lambda c: c.files_move_v2(source, target))
        except AlreadyExists:
            # A job run twice (at-least-once) finds its earlier copy there: replace it.
            self._call("move", lambda c: c.files_delete_v2(target))
            self._call("move", lambda c: c.files_move_v2(source, target))

    def _read_many(self, refs: Sequence[Ref]) -> dict[str, Document]:
        # Dropbox downloads one file a call: several at once, so a page costs a few round trips.
        def one(ref: Ref) -> tuple[str, Document | None]:
            try:
                return ref.doc_id, self._read(ref)
            except (NotFound, Corrupt):
                return ref.doc_id, None

        self.client  # noqa: B018 - made once here, not raced for by the threads
        with ThreadPoolExecutor(min(PARALLEL_READS, len(refs))) as pool:
            return {doc_id: doc for doc_id, doc in pool.map(one, refs) if doc is not None}

    def _delete(self, ref: Ref) -> None:
        path = self._path(ref)
        with contextlib.suppress(NotFound):
            self._call("delete", lambda c: c.files_delete_v2(path))

    def _list_ids(self, place: Place, display: str) -> list[str]:
        if place in (Place.CONFIGS, Place.PUBLIC_KEYS):
            raise ValueError(f"{place} holds no jobs")
        folder, prefix = _FOLDERS[place]
        if place in PER_BACKEND:
            folder = f"{folder}/{display}"
        if place is Place.STATUS:
            folder = f"{folder}/{STATUS_FOLDER}"
        recursive = place in (Place.FINISHED, Place.RESULTS)  # one folder per user below
        names = [e.name for e in self._entries(folder, recursive=recursive) if _is_file(e)]
        return [n[len(prefix) : -5] for n in names if n.startswith(prefix) and n.endswith(".json")]

    def _list_backends(self) -> list[str]:
        return [entry.name for entry in self._entries(f"{ROOT}/Config") if not _is_file(entry)]

    def _entries(self, folder: str, *, recursive: bool = False) -> list[Any]:
        """Every entry of a folder, page after page; a missing folder is an empty one."""
        try:
            page = self._call("list", lambda c: c.files_list_folder(folder, recursive=recursive))
        except NotFound:
            return []
        entries = list(page.entries)
        while page.has_more:
            page = self._call("list", partial(_next_page, cursor=page.cursor))
            entries.extend(page.entries)
        return entries


# Places whose file names are `{prefix}{job id}.json` directly in one folder.
_FOLDERS = {
    Place.QUEUED: (f"{ROOT}/Queued_Jobs", "job-"),
    Place.RUNNING: (f"{ROOT}/Running_Jobs", "job-"),
    Place.FINISHED: (f"{ROOT}/Finished_Jobs", "job-"),
    Place.DELETED: (f"{ROOT}/Deleted_Jobs", "job-"),
    Place.STATUS: (f"{ROOT}/Status", "status-"),
    Place.RESULTS: (f"{ROOT}/Result", "result-"),
    Place.LEASES: (f"{ROOT}/Leases", "lease-"),
    Place.ENDINGS: (f"{ROOT}/Endings", "ending-"),
}
PARALLEL_READS = 8  # downloads in flight at once when several documents are read


def _next_page(client: Dropbox, *, cursor: str) -> Any:
    return client.files_list_folder_continue(cursor)


def _is_file(entry: Any) -> bool:
    from dropbox.files import FileMetadata

    return isinstance(entry, FileMetadata)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """The SDK's exceptions as the provider error family, with texts that hold no secret."""
    import requests
    from dropbox import exceptions

    try:
        yield
    except StorageError:
        raise
    except exceptions.ApiError as exc:
        raise _api_error(exc.error, what) from None
    except exceptions.AuthError:
        raise AccessDenied(f"Dropbox refused the app's credentials ({what}).") from None
    except exceptions.BadInputError:
        raise Unavailable(f"Dropbox refused the request as malformed ({what}).") from None
    except exceptions.InternalServerError as exc:
        raise Unavailable(f"Dropbox failed ({what}: HTTP {exc.status_code}).") from None
    except exceptions.DropboxException as exc:
        kind = type(exc).__name__
        raise Unavailable(f"Dropbox did not answer as expected ({what}: {kind}).") from None
    except requests.RequestException as exc:
        raise Unavailable(f"Dropbox did not answer ({what}: {type(exc).__name__}).") from None


def _api_error(error: Any, what: str) -> StorageError:
    """A route's own error (HTTP 409): a miss, a conflict, or something else."""
    tag = _tag_path(error)
    if "not_found" in tag:
        return NotFound(f"Dropbox has no such file ({what}).")
    if "conflict" in tag:
        return AlreadyExists(f"Dropbox already has that file ({what}).")
    if "insufficient_space" in tag:
        return Unavailable(f"The Dropbox account is full ({what}).")
    return StorageError(f"Dropbox refused the operation ({what}: {'/'.join(tag) or 'error'}).")


def _tag_path(error: Any) -> list[str]:
    """The chain of union tags of a stone error, e.g. ["from_lookup", "not_found"]."""
    tags: list[str] = []
    while error is not None and len(tags) < 6:
        if hasattr(error, "_tag"):
            tags.append(str(error._tag))
            error = getattr(error, "_value", None)
        elif hasattr(error, "reason"):  # a struct around the union (UploadWriteFailed)
            error = error.reason
        else:
            break
    return tags
