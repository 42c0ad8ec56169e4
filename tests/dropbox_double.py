"""A loopback HTTPS double of the Dropbox v2 HTTP API, for the tests.

The provider, the API tests and sqooler's spoolers talk to it through the real
`dropbox` SDK, so it answers with the status codes, headers and JSON bodies
that the SDK's stone validators decode (files.py, users.py, auth.py): route
results, route errors (409 with `error` / `error_summary`), 400 bad input as
plain text, 401 auth errors, 429 rate limits, 5xx as plain text.

Order of use (the SDK reads its hosts when it is imported):

    address = ensure_environment(folder)   # before anything imports dropbox
    double = DropboxDouble(address)
    double.start()

State lives in the DropboxDouble object, not in the server: stop() and start()
again on the same port look like an outage that ends, with the files kept.
Everything is held under one lock, so every route is atomic (of two concurrent
moves of one file exactly one wins; the other gets from_lookup/not_found).

Reproduced: refresh-token auth at oauth2/token (form or HTTP Basic app auth;
invalid_client, invalid_grant), access-token lifetime, 401 expired_access_token
and invalid_access_token, 400 plain text for a missing Authorization header,
bad JSON, unknown or missing fields, paths that do not match the route's
pattern, a wrong Content-Type, "/" as the root of list_folder, the root in
get_metadata; case-insensitive paths (path_lower) with path_display keeping the
case of the existing folders; parents created by upload and move, folders kept
when emptied; upload modes add / overwrite / update(rev), autorename,
strict_conflict, the no-op add of identical content, content_hash checked and
answered; conflicts file / folder / file_ancestor; malformed_path for trailing
slashes, empty, "." and ".." components; list_folder pages of page_size (or
the smaller `limit`), recursive listings with the folder first, entries in an
order that is neither alphabetic nor by age, include_deleted; delete of files
and whole folders, parent_rev; "id:" paths; 429 with Retry-After and the JSON
reason; 5xx as plain text; keep-alive HTTP/1.1 over TLS.

Not reproduced: the api / content host split (one port serves both), upload
sessions, revisions and "rev:" paths, "ns:" paths and Dropbox-API-Path-Root,
cursors as a change feed (a cursor pages a snapshot taken at list_folder; at the
end it stays empty, it never reports later changes, it never expires or resets),
longpoll, scopes, team and shared folders, quotas, name restrictions, Range
downloads, real latency (see `latency`), rate limits that are not injected.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import hashlib
import http.server
import json
import os
import random
import secrets
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_UPLOAD_BYTES = 150 * 1024 * 1024  # files/upload refuses larger bodies
_BLOCK = 4 * 1024 * 1024  # the content_hash block size


@dataclass(frozen=True)
class DoubleAddress:
    """Where the double listens and the TLS material it serves with."""

    port: int
    ca_file: Path  # the test CA alone
    cert_file: Path  # the server's certificate chain
    key_file: Path  # and its key
    bundle_file: Path  # the test CA + the bundle the environment had: what the clients trust
    host: str = HOST

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def environ(self) -> dict[str, str]:
        """The variables a process needs (before `import dropbox`) to reach the double."""
        return {
            "DROPBOX_API_HOST": self.netloc,
            "DROPBOX_API_CONTENT_HOST": self.netloc,
            "DROPBOX_API_NOTIFY_HOST": self.netloc,
            "REQUESTS_CA_BUNDLE": str(self.bundle_file),
            "CURL_CA_BUNDLE": str(self.bundle_file),
        }


_reserved: dict[int, socket.socket] = {}  # port -> bound socket, kept until a double listens
_address: DoubleAddress | None = None
_address_lock = threading.Lock()


def _bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    return sock


def _check_sdk_not_imported(netloc: str) -> None:
    session = sys.modules.get("dropbox.session")
    if session is not None and getattr(session, "API_HOST", None) != netloc:
        raise RuntimeError(
            "dropbox was imported before the double's environment was set: the SDK read "
            f"DROPBOX_API_HOST={getattr(session, 'API_HOST', None)!r} at import. Call "
            "tests.dropbox_double.ensure_environment() before anything imports dropbox."
        )


def _previous_bundle() -> bytes:
    """The CA bundle HTTPS clients trusted before the double's environment was set."""
    candidates = [os.environ.get(n) for n in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")]
    candidates.append(os.environ.get("SSL_CERT_FILE"))
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:
        pass
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return b""


def prepare_environment(folder: Path) -> DoubleAddress:
    """Reserve a loopback port, make a CA and a server certificate, and point the SDK at them.

    Writes the CA, the server certificate chain and its key under `folder`, and sets
    DROPBOX_API_HOST, DROPBOX_API_CONTENT_HOST (and DROPBOX_API_NOTIFY_HOST) to
    127.0.0.1:PORT and REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE to a bundle of the test CA
    followed by the bundle those variables named before (so that pip and other
    HTTPS clients of the test session keep working), in os.environ, so that child
    processes inherit them. Must run before anything imports `dropbox`.
    """
    import trustme

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sock = _bound_socket()
    port = sock.getsockname()[1]
    _reserved[port] = sock
    ca = trustme.CA(organization_name="qlued Dropbox double")
    leaf = ca.issue_cert(HOST, "localhost")
    address = DoubleAddress(
        port=port,
        ca_file=folder / "dropbox-double-ca.pem",
        cert_file=folder / "dropbox-double-cert.pem",
        key_file=folder / "dropbox-double-key.pem",
        bundle_file=folder / "dropbox-double-bundle.pem",
    )
    ca.cert_pem.write_to_path(str(address.ca_file))
    address.bundle_file.write_bytes(ca.cert_pem.bytes() + b"\n" + _previous_bundle())
    address.cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(address.key_file))
    os.environ.update(address.environ())
    global _address
    with _address_lock:
        if _address is None:
            _address = address  # what ensure_environment() answers from now on
    _check_sdk_not_imported(address.netloc)
    return address


def ensure_environment(folder: Path | None = None) -> DoubleAddress:
    """prepare_environment once per process: later calls return the same address.

    Without a folder, the certificates go to a fresh temporary folder.
    """
    with _address_lock:
        address = _address
    if address is None:
        if folder is None:
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="dropbox-double-"))
        address = prepare_environment(folder)
    _check_sdk_not_imported(address.netloc)
    return address


def content_hash(data: bytes) -> str:
    """Dropbox's content_hash: SHA-256 over the SHA-256 digests of each 4 MiB block."""
    digests = b"".join(
        hashlib.sha256(data[start : start + _BLOCK]).digest()
        for start in range(0, len(data), _BLOCK)
    )
    return hashlib.sha256(digests).hexdigest()


# ----------------------------------------------------------------------------- errors


class _Reply(Exception):
    """Raised by a route to answer right away with a status, a body and headers."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def _json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), "application/json", headers)


def _summary(*tags: str) -> str:
    """error_summary: the tags joined by '/', then a few dots (Dropbox says: do not parse)."""
    return "/".join(tags) + "/" + "." * random.randint(0, 3)


def _route_error(error: dict[str, Any], *tags: str) -> _Reply:
    return _json_reply(409, {"error_summary": _summary(*tags), "error": error})


def _lookup_error(outer: str, tag: str) -> _Reply:
    """A LookupError under a union member: {".tag": outer, outer: {".tag": tag}}."""
    return _route_error({".tag": outer, outer: {".tag": tag}}, outer, tag)


def _write_error(outer: str, tag: str, conflict: str | None = None) -> _Reply:
    """A WriteError under a union member (create_folder path, move to, delete path_write)."""
    inner: dict[str, Any] = {".tag": tag}
    tags = [outer, tag]
    if conflict is not None:
        inner["conflict"] = {".tag": conflict}
        tags.append(conflict)
    return _route_error({".tag": outer, outer: inner}, *tags)


def _upload_write_error(tag: str, conflict: str | None = None) -> _Reply:
    """UploadError.path is an UploadWriteFailed struct: its fields sit beside the tag."""
    reason: dict[str, Any] = {".tag": tag}
    tags = ["path", tag]
    if conflict is not None:
        reason["conflict"] = {".tag": conflict}
        tags.append(conflict)
    error = {".tag": "path", "reason": reason, "upload_session_id": ""}
    return _route_error(error, *tags)


def _auth_error(tag: str) -> _Reply:
    return _json_reply(401, {"error_summary": _summary(tag), "error": {".tag": tag}})


class _BadInput(Exception):
    """A 400: Dropbox answers bad input with a plain-text explanation."""


class _Malformed(Exception):
    """A path that matches the route's pattern but that Dropbox refuses (malformed_path)."""


# ----------------------------------------------------------------------------- arguments

_PATH_PATTERNS = {
    # the stone patterns of the arguments, reduced to what they allow at the start
    "read": ("/", "id:", "rev:", "ns:"),  # ReadPath (download, get_metadata)
    "write": ("/", "ns:"),  # WritePath (create_folder)
    "write_or_id": ("/", "ns:", "id:"),  # WritePathOrId (upload, move, delete)
    "list": ("", "/", "id:", "ns:"),  # PathROrId (list_folder); "" is the root
}

# route -> {field: (kind, required)}; every field Dropbox defines for the argument
_ARGS: dict[str, dict[str, tuple[str, bool]]] = {
    "files/upload": {
        "path": ("path:write_or_id", True),
        "mode": ("mode", False),
        "autorename": ("bool", False),
        "client_modified": ("timestamp", False),
        "mute": ("bool", False),
        "property_groups": ("any", False),
        "strict_conflict": ("bool", False),
        "content_hash": ("sha256", False),
    },
    "files/download": {"path": ("path:read", True), "rev": ("rev", False)},
    "files/get_metadata": {
        "path": ("path:read", True),
        "include_media_info": ("bool", False),
        "include_deleted": ("bool", False),
        "include_has_explicit_shared_members": ("bool", False),
        "include_property_groups": ("any", False),
    },
    "files/list_folder": {
        "path": ("path:list", True),
        "recursive": ("bool", False),
        "include_media_info": ("bool", False),
        "include_deleted": ("bool", False),
        "include_has_explicit_shared_members": ("bool", False),
        "include_mounted_folders": ("bool", False),
        "limit": ("limit", False),
        "shared_link": ("any", False),
        "include_property_groups": ("any", False),
        "include_non_downloadable_files": ("bool", False),
        "include_restorable_info": ("bool", False),
    },
    "files/list_folder/continue": {"cursor": ("str", True)},
    "files/move_v2": {
        "from_path": ("path:write_or_id", True),
        "to_path": ("path:write_or_id", True),
        "allow_shared_folder": ("bool", False),
        "autorename": ("bool", False),
        "allow_ownership_transfer": ("bool", False),
    },
    "files/delete_v2": {"path": ("path:write_or_id", True), "parent_rev": ("rev", False)},
    "files/create_folder_v2": {"path": ("path:write", True), "autorename": ("bool", False)},
}


def _check_args(route: str, arg: Any) -> dict[str, Any]:
    spec = _ARGS[route]
    if not isinstance(arg, dict):
        raise _BadInput(f"expected object, got {type(arg).__name__}")
    for name in arg:
        if name not in spec:
            raise _BadInput(f"unknown field '{name}'")
    for name, (kind, required) in spec.items():
        if name not in arg or arg[name] is None:
            if required:
                raise _BadInput(f"missing required field '{name}'")
            continue
        value = arg[name]
        where = name
        if kind.startswith("path:"):
            allowed = _PATH_PATTERNS[kind[5:]]
            if not isinstance(value, str):
                raise _BadInput(f"{where}: expected string, got {type(value).__name__}")
            if kind == "path:list" and value == "/":
                raise _BadInput(
                    f'{where}: Specify the root folder as an empty string rather than as "/".'
                )
            if route == "files/get_metadata" and value == "":
                raise _BadInput(f"{where}: The root folder is unsupported.")
            if not (value == "" and "" in allowed) and not value.startswith(
                tuple(p for p in allowed if p)
            ):
                raise _BadInput(f"{where}: '{value}' did not match pattern")
        elif kind == "bool" and not isinstance(value, bool):
            raise _BadInput(f"{where}: expected boolean, got {type(value).__name__}")
        elif kind == "str" and not (isinstance(value, str) and value):
            raise _BadInput(f"{where}: expected a non-empty string")
        elif kind == "rev" and not (
            isinstance(value, str)
            and len(value) >= 9
            and all(c in "0123456789abcdef" for c in value)
        ):
            raise _BadInput(f"{where}: '{value}' did not match pattern '[0-9a-f]+'")
        elif kind == "sha256" and not (isinstance(value, str) and len(value) == 64):
            raise _BadInput(f"{where}: expected a 64-character string")
        elif kind == "limit" and not (
            isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2000
        ):
            raise _BadInput(f"{where}: expected an integer between 1 and 2000")
        elif kind == "timestamp":
            try:
                datetime.strptime(value, TIMESTAMP_FORMAT)
            except (TypeError, ValueError):
                raise _BadInput(
                    f"{where}: expected a timestamp like 2015-05-15T15:50:38Z"
                ) from None
        elif kind == "mode":
            arg[name] = _parse_mode(value)
    return arg


def _parse_mode(value: Any) -> tuple[str, str | None]:
    """WriteMode: "add", {".tag": "overwrite"} or {".tag": "update", "update": rev}."""
    tag = (
        value if isinstance(value, str) else value.get(".tag") if isinstance(value, dict) else None
    )
    if tag in ("add", "overwrite"):
        return tag, None
    if tag == "update" and isinstance(value, dict):
        rev = value.get("update")
        if isinstance(rev, str) and len(rev) >= 9:
            return "update", rev
    raise _BadInput(f"mode: unknown tag {tag!r}")


def _split_path(raw: str, *, allow_trailing_slash: bool = False) -> tuple[str, str]:
    """(path_lower, path as given) for a path that starts with "/"; "" is the root."""
    if raw == "":
        return "", ""
    if allow_trailing_slash and len(raw) > 1:
        raw = raw.rstrip("/")
    if raw.endswith("/") or raw != raw.rstrip():
        raise _Malformed(raw)  # "Paths may not end with a slash or whitespace."
    parts = raw[1:].split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in raw or "\x00" in raw:
        raise _Malformed(raw)
    return raw.lower(), raw


def _now() -> str:
    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


# ----------------------------------------------------------------------------- state


@dataclass
class _Entry:
    display: str
    id: str
    folder: bool
    data: bytes = b""
    rev: str = ""
    client_modified: str = ""
    server_modified: str = ""
    hash: str = ""

    def metadata(self, *, tag: bool) -> dict[str, Any]:
        lower = self.display.lower()
        meta: dict[str, Any] = {".tag": "folder" if self.folder else "file"} if tag else {}
        meta.update(
            name=_name(self.display), path_lower=lower, path_display=self.display, id=self.id
        )
        if not self.folder:
            meta.update(
                client_modified=self.client_modified,
                server_modified=self.server_modified,
                rev=self.rev,
                size=len(self.data),
                is_downloadable=True,
                content_hash=self.hash,
            )
        return meta


@dataclass
class _Fault:
    route: str | None
    status: int
    times: int
    retry_after: int | None


@dataclass
class _Cursor:
    folder: str  # path_lower of the listed folder ("" = root)
    entries: list[dict[str, Any]]  # the listing as it was when list_folder was called
    page: int
    position: int = 0


@dataclass
class _Token:
    expires_at: float
    expired: bool = False


@dataclass
class _State:
    entries: dict[str, _Entry] = field(default_factory=dict)  # path_lower -> entry
    deleted: dict[str, str] = field(default_factory=dict)  # path_lower -> path_display
    cursors: dict[str, _Cursor] = field(default_factory=dict)
    tokens: dict[str, _Token] = field(default_factory=dict)
    faults: list[_Fault] = field(default_factory=list)
    revoked: bool = False
    rev_seq: int = 0


# ----------------------------------------------------------------------------- the double


class DropboxDouble:
    """An in-memory Dropbox app folder behind the v2 routes, served over loopback TLS."""

    APP_KEY = "qluedtestappkey"
    APP_SECRET = "qluedtestappsecret"
    REFRESH_TOKEN = "qlued-double-refresh-token-0123456789abcdef"
    ACCOUNT_ID = "dbid:AAD" + "0123456789abcdefghijklmnopqrstuv"  # 40 characters
    EMAIL = "lab@example.org"

    def __init__(self, address: DoubleAddress, page_size: int = 3) -> None:
        self.address = address
        self.page_size = page_size
        self.token_lifetime = 14400
        self.latency = 0.0  # seconds added to every request (Dropbox takes hundreds of ms)
        self.calls: collections.Counter[str] = collections.Counter()
        self.connections = 0  # TLS connections accepted since the last reset
        self.errors: list[str] = []  # tracebacks of requests the double itself failed on
        self._lock = threading.RLock()
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Listen on the address's port (again, after stop()); serve each connection in a thread."""
        if self._server is not None:
            return
        sock = _reserved.pop(self.address.port, None) or _bound_socket(self.address.port)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.address.cert_file), str(self.address.key_file))
        self._server = _Server(sock, context, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"dropbox-double-{self.address.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop every open connection; the files are kept."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> DropboxDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test controls

    def login(self) -> dict[str, str]:
        """The login of a storage provider entry that reaches this double."""
        return {
            "app_key": self.APP_KEY,
            "app_secret": self.APP_SECRET,
            "refresh_token": self.REFRESH_TOKEN,
        }

    def client(self, **options: Any) -> Any:
        """A `dropbox.Dropbox` built from login() (options go to its constructor)."""
        import dropbox

        return dropbox.Dropbox(
            app_key=self.APP_KEY,
            app_secret=self.APP_SECRET,
            oauth2_refresh_token=self.REFRESH_TOKEN,
            **options,
        )

    def reset(self) -> None:
        """Empty the files and folders; forget counters, tokens, faults, revocation, errors.

        token_lifetime and latency go back to their defaults; page_size is kept.
        """
        with self._lock:
            self._state = _State()
            self.calls.clear()
            self.connections = 0
            self.errors.clear()
            self.token_lifetime = 14400
            self.latency = 0.0

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused with 401 expired_access_token."""
        with self._lock:
            for token in self._state.tokens.values():
                token.expired = True

    def revoke(self) -> None:
        """The app's access is revoked: refresh gives invalid_grant, tokens invalid_access_token."""
        with self._lock:
            self._state.revoked = True

    def unrevoke(self) -> None:
        """Access is granted again (the same refresh token works; old access tokens do not)."""
        with self._lock:
            self._state.revoked = False
            self._state.tokens.clear()

    def inject(
        self,
        route: str | None,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """The next `times` requests to `route` (e.g. "files/upload"; None = any) get `status`.

        429 comes with Retry-After and Dropbox's too_many_requests JSON body, 401 with
        invalid_access_token, anything else (500, 503, ...) with a plain-text body.
        Faults are consumed in the order they were injected.
        """
        if route is not None:
            route = route.removeprefix("/").removeprefix("2/")
        with self._lock:
            self._state.faults.append(_Fault(route, status, times, retry_after))

    def paths(self) -> list[str]:
        """Every file's path_display, sorted."""
        with self._lock:
            return sorted(e.display for e in self._state.entries.values() if not e.folder)

    def folders(self) -> list[str]:
        """Every folder's path_display, sorted."""
        with self._lock:
            return sorted(e.display for e in self._state.entries.values() if e.folder)

    def read(self, path: str) -> bytes:
        """A file's bytes (path case-insensitive); FileNotFoundError when there is none."""
        with self._lock:
            entry = self._state.entries.get(path.lower())
            if entry is None or entry.folder:
                raise FileNotFoundError(path)
            return entry.data

    def put(self, path: str, data: bytes) -> None:
        """Write a file directly (overwrite, parents created), as another Dropbox client would."""
        lower, display = _split_path(path)
        if not lower:
            raise ValueError(f"not a file path: {path!r}")
        with self._lock:
            existing = self._state.entries.get(lower)
            if existing is not None and existing.folder:
                raise IsADirectoryError(path)
            self._write_file(lower, display, data, existing, _now())

    def metadata(self, path: str) -> dict[str, Any]:
        """The metadata get_metadata would answer for `path` (KeyError when missing)."""
        with self._lock:
            return self._state.entries[path.lower()].metadata(tag=True)

    # ------------------------------------------------------------------ request plumbing

    def _take_fault(self, route: str) -> _Fault | None:
        with self._lock:
            for fault in self._state.faults:
                if fault.route is None or fault.route == route:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._state.faults.remove(fault)
                    return fault
        return None

    def _fault_reply(self, fault: _Fault) -> _Reply:
        if fault.status == 429:
            retry_after = fault.retry_after if fault.retry_after is not None else 1
            body = {
                "error_summary": _summary("too_many_requests"),
                "error": {"reason": {".tag": "too_many_requests"}, "retry_after": retry_after},
            }
            return _json_reply(429, body, {"Retry-After": str(retry_after)})
        if fault.status == 401:
            return _auth_error("invalid_access_token")
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
        reason = http.HTTPStatus(fault.status).phrase if fault.status in _PHRASES else "Error"
        return _Reply(fault.status, f"{fault.status} {reason}".encode(), headers=headers)

    def _check_bearer(self, route: str, header: str | None) -> None:
        if not header:
            raise _Reply(
                400,
                f'Error in call to API function "{route}": Must provide HTTP header '
                '"Authorization" or URL parameter "authorization".'.encode(),
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Reply(
                400,
                f'Error in call to API function "{route}": Invalid authorization value in '
                'HTTP header "Authorization". Expecting "Bearer <oauth2-access-token>".'.encode(),
            )
        with self._lock:
            entry = self._state.tokens.get(token.strip())
            if entry is None or self._state.revoked:
                raise _auth_error("invalid_access_token")
            if entry.expired or time.time() >= entry.expires_at:
                raise _auth_error("expired_access_token")

    def _handle(self, handler: _Handler) -> None:
        """Serve one request: count it, apply latency and faults, then the route."""
        url = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(url.query)
        full_route = url.path.lstrip("/")
        route = full_route.removeprefix("2/")
        with self._lock:
            self.calls[route] += 1
        if self.latency:
            time.sleep(self.latency)
        try:
            if handler.command != "POST":
                raise _Reply(405, b"Method Not Allowed", headers={"Allow": "POST"})
            fault = self._take_fault(route)
            if fault is not None:
                raise self._fault_reply(fault)
            if full_route == "oauth2/token":
                raise self._token(handler, query)
            if not full_route.startswith("2/") or route not in _ROUTES:
                raise _Reply(400, f'Unknown API function: "{route}"'.encode())
            style = _ROUTES[route]
            self._check_bearer(route, handler.headers.get("Authorization"))
            arg = self._route_arg(route, style, handler, query)
            if route == "users/get_current_account":
                if arg is not None:
                    raise _Reply(
                        400,
                        f'Error in call to API function "{route}": request body: expected '
                        "null, got value".encode(),
                    )
                raise _json_reply(200, self._account())
            try:
                arg = _check_args(route, arg)
            except _BadInput as exc:
                where = "request body" if style == "rpc" else 'HTTP header "Dropbox-API-Arg"'
                raise _Reply(
                    400, f'Error in call to API function "{route}": {where}: {exc}'.encode()
                ) from None
            with self._lock:
                if route == "files/upload":
                    raise self._upload(arg, handler.body)
                if route == "files/download":
                    raise self._download(arg)
                raise getattr(self, "_" + route[len("files/") :].replace("/", "_"))(arg)
        except _Reply as reply:
            handler.reply(reply)

    def _route_arg(
        self, route: str, style: str, handler: _Handler, query: dict[str, list[str]]
    ) -> Any:
        content_type = (handler.headers.get("Content-Type") or "").lower().replace(" ", "")
        if style == "rpc":
            if content_type not in ("application/json", "application/json;charset=utf-8"):
                raise _Reply(
                    400,
                    f'Error in call to API function "{route}": Bad HTTP "Content-Type" header: '
                    f'"{content_type}". Expecting one of "application/json", '
                    '"application/json; charset=utf-8".'.encode(),
                )
            raw = handler.body.decode("utf-8", "replace")
            where = "request body"
        else:
            if style == "upload":
                allowed: tuple[str, ...] = ("application/octet-stream",)
            else:
                allowed = ("", "text/plain", "text/plain;charset=utf-8", "application/octet-stream")
            if content_type not in allowed:
                raise _Reply(
                    400,
                    f'Error in call to API function "{route}": Bad HTTP "Content-Type" header: '
                    f'"{content_type}". Expecting one of {", ".join(map(repr, allowed))}.'.encode(),
                )
            if style == "download" and handler.body:
                raise _Reply(
                    400,
                    f'Error in call to API function "{route}": This function requires its '
                    "argument in the HTTP header, the request body must be empty.".encode(),
                )
            header = handler.headers.get("Dropbox-API-Arg")
            raw = header if header is not None else (query.get("arg") or [None])[0]
            where = 'HTTP header "Dropbox-API-Arg"'
            if raw is None:
                raise _Reply(
                    400,
                    f'Error in call to API function "{route}": Must provide HTTP header '
                    '"Dropbox-API-Arg" or URL parameter "arg".'.encode(),
                )
            if any(ord(c) > 0x7F for c in raw):
                raise _Reply(
                    400,
                    f'Error in call to API function "{route}": {where}: characters above '
                    "U+007F must be escaped as \\uXXXX.".encode(),
                )
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise _Reply(
                400,
                f'Error in call to API function "{route}": {where}: could not decode input '
                "as JSON".encode(),
            ) from None

    # ------------------------------------------------------------------ oauth2/token

    def _token(self, handler: _Handler, query: dict[str, list[str]]) -> _Reply:
        form = {k: v[-1] for k, v in query.items()}
        form.update(
            {
                k: v[-1]
                for k, v in urllib.parse.parse_qs(handler.body.decode("utf-8", "replace")).items()
            }
        )
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = handler.headers.get("Authorization") or ""
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return _json_reply(
                    400, {"error": "invalid_request", "error_description": "bad Basic auth"}
                )
            client_id, _, client_secret = decoded.partition(":")

        def oauth_error(error: str, description: str) -> _Reply:
            return _json_reply(400, {"error": error, "error_description": description})

        grant_type = form.get("grant_type")
        if not grant_type:
            return oauth_error("invalid_request", "No grant_type")
        if grant_type != "refresh_token":
            return oauth_error("unsupported_grant_type", f"unsupported grant_type {grant_type!r}")
        if client_id != self.APP_KEY or client_secret != self.APP_SECRET:
            return oauth_error("invalid_client", "Invalid client_id or client_secret")
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return oauth_error("invalid_request", "No refresh_token")
        with self._lock:
            if refresh_token != self.REFRESH_TOKEN or self._state.revoked:
                return oauth_error("invalid_grant", "refresh token is invalid or revoked")
            access_token = "sl.double-" + secrets.token_urlsafe(32)
            lifetime = int(self.token_lifetime)
            self._state.tokens[access_token] = _Token(time.time() + lifetime)
        return _json_reply(
            200, {"access_token": access_token, "token_type": "bearer", "expires_in": lifetime}
        )

    # ------------------------------------------------------------------ users

    def _account(self) -> dict[str, Any]:
        return {
            "account_id": self.ACCOUNT_ID,
            "name": {
                "given_name": "Qlued",
                "surname": "Lab",
                "familiar_name": "Qlued",
                "display_name": "Qlued Lab",
                "abbreviated_name": "QL",
            },
            "email": self.EMAIL,
            "email_verified": True,
            "disabled": False,
            "country": "DE",
            "locale": "en",
            "referral_link": "https://db.tt/double",
            "is_paired": False,
            "account_type": {".tag": "basic"},
            "root_info": {
                ".tag": "user",
                "root_namespace_id": "3235641",
                "home_namespace_id": "3235641",
            },
        }

    # ------------------------------------------------------------------ files helpers

    def _new_rev(self) -> str:
        self._state.rev_seq += 1
        return f"{self._state.rev_seq:09x}{secrets.token_hex(3)}"

    def _resolve(self, raw: str, *, allow_trailing_slash: bool = False) -> tuple[str, str]:
        """(path_lower, display) of a path or an existing entry's "id:..." ."""
        if raw.startswith("id:"):
            for lower, entry in self._state.entries.items():
                if entry.id == raw:
                    return lower, entry.display
            raise KeyError(raw)
        if raw.startswith(("ns:", "rev:")):
            raise _Malformed(raw)  # namespaces and revision paths are not reproduced
        return _split_path(raw, allow_trailing_slash=allow_trailing_slash)

    def _display_under(self, lower: str, given: str) -> str:
        """The display path of a new entry: the parent's casing, then the name as given."""
        parent = _parent(lower)
        if not parent:
            return "/" + _name(given)
        return self._state.entries[parent].display + "/" + _name(given)

    def _ensure_parents(self, lower: str, given: str) -> str | None:
        """Create the missing folders above `lower`; the conflict tag if a file is in the way."""
        parts_lower = lower.split("/")[1:-1]
        parts_given = given.split("/")[1:-1]
        current_lower = ""
        for part_lower, part_given in zip(parts_lower, parts_given, strict=True):
            current_lower += "/" + part_lower
            entry = self._state.entries.get(current_lower)
            if entry is None:
                display = self._display_under(current_lower, part_given)
                self._state.entries[current_lower] = _Entry(
                    display=display, id=_new_id(), folder=True
                )
                self._state.deleted.pop(current_lower, None)
            elif not entry.folder:
                return "file_ancestor"
        return None

    def _free_name(self, lower: str, given: str) -> tuple[str, str]:
        """autorename: "name (1).ext", "name (2).ext", ... until the path is free."""
        stem, dot, ext = _name(given).rpartition(".")
        if not dot or not stem:
            stem, dot, ext = _name(given), "", ""
        number = 1
        while True:
            name = f"{stem} ({number}){dot}{ext}"
            candidate = _parent(given) + "/" + name
            if candidate.lower() not in self._state.entries:
                return candidate.lower(), candidate
            number += 1

    def _write_file(
        self,
        lower: str,
        given: str,
        data: bytes,
        existing: _Entry | None,
        client_modified: str,
    ) -> _Entry | str:
        if existing is None:
            conflict = self._ensure_parents(lower, given)
            if conflict:
                return conflict
            entry = _Entry(display=self._display_under(lower, given), id=_new_id(), folder=False)
            self._state.entries[lower] = entry
        else:
            entry = existing
        entry.data = data
        entry.hash = content_hash(data)
        entry.rev = self._new_rev()
        entry.server_modified = _now()
        entry.client_modified = client_modified
        self._state.deleted.pop(lower, None)
        return entry

    def _remove(self, lower: str) -> None:
        """Remove an entry and, for a folder, everything under it (remembered as deleted)."""
        for key in [k for k in self._state.entries if k == lower or _under(k, lower)]:
            self._state.deleted[key] = self._state.entries.pop(key).display

    # ------------------------------------------------------------------ files routes

    def _upload(self, arg: dict[str, Any], data: bytes) -> _Reply:
        if len(data) > MAX_UPLOAD_BYTES:
            return _route_error({".tag": "payload_too_large"}, "payload_too_large")
        if arg.get("content_hash") and arg["content_hash"] != content_hash(data):
            return _route_error({".tag": "content_hash_mismatch"}, "content_hash_mismatch")
        try:
            lower, given = self._resolve(arg["path"])
        except KeyError:
            return _upload_write_error("malformed_path")
        except _Malformed:
            return _upload_write_error("malformed_path")
        if not lower:
            return _upload_write_error("malformed_path")
        mode, rev = arg.get("mode") or ("add", None)
        strict = bool(arg.get("strict_conflict"))
        autorename = bool(arg.get("autorename"))
        client_modified = arg.get("client_modified") or _now()
        existing = self._state.entries.get(lower)
        if existing is not None:
            conflict: str | None = None
            if existing.folder:
                conflict = "folder"
            elif mode == "add" or (mode == "update" and rev != existing.rev):
                if existing.data == data and not strict:
                    # identical content is no conflict: Dropbox answers the existing file
                    return _json_reply(200, existing.metadata(tag=False))
                conflict = "file"
            if conflict is not None:
                if not autorename:
                    return _upload_write_error("conflict", conflict)
                lower, given = self._free_name(lower, given)
                existing = None
        written = self._write_file(lower, given, data, existing, client_modified)
        if isinstance(written, str):
            return _upload_write_error("conflict", written)
        return _json_reply(200, written.metadata(tag=False))

    def _download(self, arg: dict[str, Any]) -> _Reply:
        try:
            lower, _ = self._resolve(arg["path"])
        except KeyError:
            return _lookup_error("path", "not_found")
        except _Malformed:
            return _lookup_error("path", "malformed_path")
        entry = self._state.entries.get(lower) if lower else None
        if lower == "" or (entry is not None and entry.folder):
            return _lookup_error("path", "not_file")
        if entry is None or (arg.get("rev") and arg["rev"] != entry.rev):
            return _lookup_error("path", "not_found")
        result = json.dumps(entry.metadata(tag=False))  # ASCII: non-ASCII is \u-escaped
        return _Reply(200, entry.data, "application/octet-stream", {"Dropbox-API-Result": result})

    def _get_metadata(self, arg: dict[str, Any]) -> _Reply:
        try:
            lower, _ = self._resolve(arg["path"])
        except KeyError:
            return _lookup_error("path", "not_found")
        except _Malformed:
            return _lookup_error("path", "malformed_path")
        entry = self._state.entries.get(lower)
        if entry is not None:
            return _json_reply(200, entry.metadata(tag=True))
        if arg.get("include_deleted") and lower in self._state.deleted:
            return _json_reply(200, _deleted_metadata(self._state.deleted[lower]))
        return _lookup_error("path", "not_found")

    def _list_folder(self, arg: dict[str, Any]) -> _Reply:
        try:
            # sqooler lists "/Backend_files/Config/": Dropbox's list_folder accepts the slash
            lower, _ = self._resolve(arg["path"], allow_trailing_slash=True)
        except KeyError:
            return _lookup_error("path", "not_found")
        except _Malformed:
            return _lookup_error("path", "malformed_path")
        folder = self._state.entries.get(lower) if lower else None
        if lower and folder is None:
            return _lookup_error("path", "not_found")
        if folder is not None and not folder.folder:
            return _lookup_error("path", "not_folder")
        recursive = bool(arg.get("recursive"))

        def inside(key: str) -> bool:
            if not _under(key, lower):
                return False
            return recursive or "/" not in key[len(lower) + 1 :]

        found = [e.metadata(tag=True) for k, e in self._state.entries.items() if inside(k)]
        if arg.get("include_deleted"):
            found += [
                _deleted_metadata(display)
                for key, display in self._state.deleted.items()
                if inside(key) and key not in self._state.entries
            ]
        # Dropbox promises no order: a stable order that is neither alphabetic nor by age
        found.sort(key=lambda m: (m["path_lower"].count("/"), _shuffle_key(m["path_lower"])))
        if recursive and folder is not None:
            found.insert(0, folder.metadata(tag=True))
        page = min(self.page_size, arg.get("limit") or self.page_size)
        return self._page(_Cursor(lower, found, page))

    def _page(self, cursor: _Cursor) -> _Reply:
        """The next page of a listing, with a fresh cursor that continues after it."""
        entries = cursor.entries[cursor.position : cursor.position + cursor.page]
        cursor = _Cursor(cursor.folder, cursor.entries, cursor.page, cursor.position + len(entries))
        token = "AAD" + secrets.token_urlsafe(24)
        self._state.cursors[token] = cursor
        if len(self._state.cursors) > 10000:
            del self._state.cursors[next(iter(self._state.cursors))]
        return _json_reply(
            200,
            {
                "entries": entries,
                "cursor": token,
                "has_more": cursor.position < len(cursor.entries),
            },
        )

    def _list_folder_continue(self, arg: dict[str, Any]) -> _Reply:
        cursor = self._state.cursors.get(arg["cursor"])
        if cursor is None:
            return _Reply(
                400,
                b'Error in call to API function "files/list_folder/continue": Invalid '
                b'"cursor" parameter.',
            )
        folder = self._state.entries.get(cursor.folder)
        if cursor.folder and (folder is None or not folder.folder):
            return _lookup_error("path", "not_found")
        return self._page(cursor)

    def _move_v2(self, arg: dict[str, Any]) -> _Reply:
        try:
            src, _ = self._resolve(arg["from_path"])
        except KeyError:
            return _lookup_error("from_lookup", "not_found")
        except _Malformed:
            return _lookup_error("from_lookup", "malformed_path")
        try:
            dst, given = self._resolve(arg["to_path"])
        except (KeyError, _Malformed):
            return _write_error("to", "malformed_path")
        entry = self._state.entries.get(src)
        if entry is None:
            return _lookup_error("from_lookup", "not_found")
        if not dst:
            return _write_error("to", "malformed_path")
        if _under(dst, src):
            return _route_error(
                {".tag": "cant_move_folder_into_itself"}, "cant_move_folder_into_itself"
            )
        target = self._state.entries.get(dst)
        case_only = dst == src and given != entry.display
        if target is not None and not case_only:
            if not arg.get("autorename"):
                return _write_error("to", "conflict", "folder" if target.folder else "file")
            dst, given = self._free_name(dst, given)
        conflict = self._ensure_parents(dst, given)
        if conflict:
            return _write_error("to", "conflict", conflict)
        moved = [(k, e) for k, e in self._state.entries.items() if k == src or _under(k, src)]
        for key, item in moved:
            del self._state.entries[key]
            self._state.deleted[key] = item.display
        old_root, new_root = entry.display, self._display_under(dst, given)
        for _, item in moved:
            item.display = new_root + item.display[len(old_root) :]
            if not item.folder:
                item.rev = self._new_rev()
            self._state.entries[item.display.lower()] = item
            self._state.deleted.pop(item.display.lower(), None)
        return _json_reply(200, {"metadata": entry.metadata(tag=True)})

    def _delete_v2(self, arg: dict[str, Any]) -> _Reply:
        try:
            lower, _ = self._resolve(arg["path"])
        except KeyError:
            return _lookup_error("path_lookup", "not_found")
        except _Malformed:
            return _lookup_error("path_lookup", "malformed_path")
        entry = self._state.entries.get(lower) if lower else None
        if entry is None:
            return _lookup_error("path_lookup", "not_found")
        parent_rev = arg.get("parent_rev")
        if parent_rev and (entry.folder or parent_rev != entry.rev):
            return _write_error("path_write", "conflict", "folder" if entry.folder else "file")
        meta = entry.metadata(tag=True)
        self._remove(lower)
        return _json_reply(200, {"metadata": meta})

    def _create_folder_v2(self, arg: dict[str, Any]) -> _Reply:
        try:
            lower, given = self._resolve(arg["path"])
        except (KeyError, _Malformed):
            return _write_error("path", "malformed_path")
        if not lower:
            return _write_error("path", "malformed_path")
        existing = self._state.entries.get(lower)
        if existing is not None:
            if not arg.get("autorename"):
                return _write_error("path", "conflict", "folder" if existing.folder else "file")
            lower, given = self._free_name(lower, given)
        conflict = self._ensure_parents(lower, given)
        if conflict:
            return _write_error("path", "conflict", conflict)
        entry = _Entry(display=self._display_under(lower, given), id=_new_id(), folder=True)
        self._state.entries[lower] = entry
        self._state.deleted.pop(lower, None)
        return _json_reply(200, {"metadata": entry.metadata(tag=False)})


_ROUTES = {
    "users/get_current_account": "rpc",
    "files/upload": "upload",
    "files/download": "download",
    "files/get_metadata": "rpc",
    "files/list_folder": "rpc",
    "files/list_folder/continue": "rpc",
    "files/move_v2": "rpc",
    "files/delete_v2": "rpc",
    "files/create_folder_v2": "rpc",
}
_PHRASES = {s.value for s in http.HTTPStatus}


def _new_id() -> str:
    return "id:" + secrets.token_urlsafe(16)[:22]


def _shuffle_key(path_lower: str) -> bytes:
    return hashlib.blake2s(path_lower.encode(), digest_size=8).digest()


def _deleted_metadata(display: str) -> dict[str, Any]:
    return {
        ".tag": "deleted",
        "name": _name(display),
        "path_lower": display.lower(),
        "path_display": display,
    }


# ----------------------------------------------------------------------------- HTTP server


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply carries Content-Length
    server_version = "envoy"
    sys_version = ""
    timeout = 300  # an idle keep-alive connection is closed after this many seconds
    server: _Server
    body: bytes

    def setup(self) -> None:
        super().setup()
        self.request.do_handshake()  # in this connection's thread, not in accept()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        self.body = self._read_body()
        try:
            self.server.double._handle(self)
        except (OSError, ssl.SSLError):
            raise  # the client went away
        except Exception:
            text = traceback.format_exc()
            self.server.double.errors.append(text)
            self.reply(_Reply(500, ("error in the Dropbox double\n" + text).encode()))

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _serve

    def reply(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("X-Dropbox-Request-Id", secrets.token_hex(16))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, double: DropboxDouble) -> None:
        self.double = double
        self.context = context
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        socketserver.BaseServer.__init__(self, sock.getsockname(), _Handler)
        self.socket = sock
        self.server_name, self.server_port = sock.getsockname()[:2]
        self.server_activate()

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, peer = self.socket.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        with self.open_lock:
            self.open.add(conn)
        with self.double._lock:
            self.double.connections += 1
        return conn, peer

    def shutdown_request(self, request: Any) -> None:
        with self.open_lock:
            self.open.discard(request)
        with contextlib.suppress(OSError, ValueError):
            super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.open_lock:
            conns, self.open = list(self.open), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)  # wakes a thread blocked in recv

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ssl.SSLError, ValueError)):
            return  # a client that went away, or a connection closed by stop()
        super().handle_error(request, client_address)
