"""The Dropbox double, driven through the real SDK: what it answers is what Dropbox answers.

The environment must point the SDK at the double before `dropbox` is imported;
ensure_environment() does it once per process (conftest may have done it already).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.dropbox_double import DropboxDouble, content_hash, ensure_environment
from tests.toolenvs import SQOOLER, ensure_venv

ADDRESS = ensure_environment()

import dropbox  # noqa: E402  (the SDK reads its hosts at import)
from dropbox import exceptions  # noqa: E402
from dropbox.files import (  # noqa: E402
    DeletedMetadata,
    FileMetadata,
    FolderMetadata,
    WriteMode,
)

BASE = f"https://{ADDRESS.netloc}"
_own: list[DropboxDouble] = []


@pytest.fixture(scope="module", autouse=True)
def _stop_own_double() -> Iterator[None]:
    yield
    while _own:
        _own.pop().stop()


@pytest.fixture
def double(request: pytest.FixtureRequest) -> Iterator[DropboxDouble]:
    """The session's double when conftest provides one (one port, one server), else our own."""
    try:
        server: DropboxDouble = request.getfixturevalue("dropbox_double")
    except pytest.FixtureLookupError:
        if not _own:
            _own.append(DropboxDouble(ADDRESS))
        server = _own[0]
    page_size = server.page_size
    server.start()
    server.reset()
    server.page_size = 3
    yield server
    errors = list(server.errors)
    server.start()  # a test that stopped it leaves it running
    server.reset()
    server.page_size = page_size
    assert errors == [], errors[0]


@pytest.fixture
def dbx(double: DropboxDouble) -> Iterator[dropbox.Dropbox]:
    client = double.client(max_retries_on_error=0, max_retries_on_rate_limit=0)
    yield client
    client.close()


def access_token() -> str:
    answer = requests.post(
        f"{BASE}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": DropboxDouble.REFRESH_TOKEN,
            "client_id": DropboxDouble.APP_KEY,
            "client_secret": DropboxDouble.APP_SECRET,
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def rpc(route: str, arg: Any, token: str | None = None, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or access_token()}"}
    headers.update(kwargs.pop("headers", {}))
    body = kwargs.pop("data", None)
    if body is None:
        body = json.dumps(arg)
        headers.setdefault("Content-Type", "application/json")
    return requests.post(f"{BASE}/2/{route}", data=body, headers=headers, timeout=10, **kwargs)


def route_error(excinfo: pytest.ExceptionInfo[exceptions.ApiError]) -> Any:
    return excinfo.value.error


# ----------------------------------------------------------------------------- upload


def test_upload_add_overwrite_and_conflict(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    meta = dbx.files_upload(b"one", "/Jobs/Queued/Job-1.json")
    assert isinstance(meta, FileMetadata)
    assert (meta.name, meta.path_display, meta.path_lower) == (
        "Job-1.json",
        "/Jobs/Queued/Job-1.json",
        "/jobs/queued/job-1.json",
    )
    assert meta.size == 3 and meta.id.startswith("id:") and len(meta.rev) >= 9
    assert int(meta.rev, 16) >= 0
    assert meta.content_hash == content_hash(b"one") == dropbox.content_hash.content_hash(b"one")
    assert meta.server_modified.year >= 2024  # parsed from %Y-%m-%dT%H:%M:%SZ

    # add over an existing file: path/conflict/file, whatever the case of the path
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_upload(b"two", "/jobs/QUEUED/job-1.json")
    error = route_error(caught)
    assert error.is_path() and error.get_path().reason.is_conflict()
    assert error.get_path().reason.get_conflict().is_file()
    assert double.read("/jobs/queued/job-1.json") == b"one"

    # identical content is no conflict (unless strict_conflict): the file is answered as is
    same = dbx.files_upload(b"one", "/Jobs/Queued/Job-1.json")
    assert (same.rev, same.id) == (meta.rev, meta.id)
    with pytest.raises(exceptions.ApiError):
        dbx.files_upload(b"one", "/Jobs/Queued/Job-1.json", strict_conflict=True)

    newer = dbx.files_upload(b"three", "/jobs/queued/JOB-1.json", mode=WriteMode.overwrite)
    assert newer.rev != meta.rev and newer.id == meta.id
    assert newer.path_display == "/Jobs/Queued/Job-1.json"  # the existing name keeps its case
    assert double.read("/Jobs/Queued/Job-1.json") == b"three"

    # update: only over the rev it names
    with pytest.raises(exceptions.ApiError):
        dbx.files_upload(b"four", "/Jobs/Queued/Job-1.json", mode=WriteMode.update(meta.rev))
    dbx.files_upload(b"four", "/Jobs/Queued/Job-1.json", mode=WriteMode.update(newer.rev))

    renamed = dbx.files_upload(b"five", "/Jobs/Queued/Job-1.json", autorename=True)
    assert renamed.path_display == "/Jobs/Queued/Job-1 (1).json"

    # a folder in the way, or a file where a folder should be
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_upload(b"x", "/Jobs/Queued")
    assert route_error(caught).get_path().reason.get_conflict().is_folder()
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_upload(b"x", "/Jobs/Queued/Job-1.json/inner.json")
    assert route_error(caught).get_path().reason.get_conflict().is_file_ancestor()

    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_upload(b"x", "/Jobs/bad.json", content_hash="0" * 64)
    assert route_error(caught).is_content_hash_mismatch()

    assert double.paths() == ["/Jobs/Queued/Job-1 (1).json", "/Jobs/Queued/Job-1.json"]
    assert double.folders() == ["/Jobs", "/Jobs/Queued"]
    assert double.calls["files/upload"] == 11


def test_new_names_take_the_case_of_existing_folders(
    double: DropboxDouble, dbx: dropbox.Dropbox
) -> None:
    dbx.files_upload(b"{}", "/Backend_files/Config/Fermions/config.json")
    meta = dbx.files_upload(b"{}", "/backend_files/CONFIG/fermions/Other.json")
    assert meta.path_display == "/Backend_files/Config/Fermions/Other.json"
    assert meta.path_lower == "/backend_files/config/fermions/other.json"
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_upload(b"{}", "/Backend_files/Config/")
    assert route_error(caught).get_path().reason.is_malformed_path()


# ----------------------------------------------------------------------------- download, metadata


def test_download_answers_metadata_in_the_result_header(
    double: DropboxDouble, dbx: dropbox.Dropbox
) -> None:
    double.put("/Backend_files/Status/fermions/None/status-1.json", b'{"status": "DONE"}')
    meta, response = dbx.files_download("/backend_files/status/FERMIONS/none/status-1.json")
    assert response.content == b'{"status": "DONE"}'
    assert meta.path_display == "/Backend_files/Status/fermions/None/status-1.json"
    assert meta.size == len(response.content)

    raw = rpc(
        "files/download",
        None,
        data=b"",
        headers={
            "Dropbox-API-Arg": json.dumps(
                {"path": "/Backend_files/Status/fermions/None/status-1.json"}
            )
        },
    )
    assert raw.status_code == 200
    assert raw.headers["Content-Type"] == "application/octet-stream"
    assert json.loads(raw.headers["Dropbox-API-Result"])["id"] == meta.id
    assert raw.content == b'{"status": "DONE"}'

    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_download("/Backend_files/Status/fermions/None/status-2.json")
    assert route_error(caught).is_path() and route_error(caught).get_path().is_not_found()
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_download("/Backend_files/Status")
    assert route_error(caught).get_path().is_not_file()
    assert double.calls["files/download"] == 4


def test_get_metadata_of_files_folders_and_missing_paths(
    double: DropboxDouble, dbx: dropbox.Dropbox
) -> None:
    double.put("/A/b.json", b"12345")
    file_meta = dbx.files_get_metadata("/a/B.json")
    assert isinstance(file_meta, FileMetadata) and file_meta.size == 5
    assert dbx.files_get_metadata(file_meta.id).path_display == "/A/b.json"
    folder_meta = dbx.files_get_metadata("/a")
    assert isinstance(folder_meta, FolderMetadata) and folder_meta.path_display == "/A"

    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_get_metadata("/A/c.json")
    assert route_error(caught).get_path().is_not_found()
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_get_metadata("/A/")  # Dropbox paths may not end with a slash
    assert route_error(caught).get_path().is_malformed_path()
    for path in ("", "A/b.json"):  # the SDK refuses these itself; Dropbox answers 400
        answer = rpc("files/get_metadata", {"path": path})
        assert answer.status_code == 400, answer.text
    assert "root folder is unsupported" in rpc("files/get_metadata", {"path": ""}).text

    dbx.files_delete_v2("/A/b.json")
    assert isinstance(dbx.files_get_metadata("/A/b.json", include_deleted=True), DeletedMetadata)


# ----------------------------------------------------------------------------- list_folder


def test_list_folder_pages_with_continue(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    queue = "/Backend_files/Queued_Jobs/fermions"
    names = {f"job-{i}.json" for i in range(8)}
    for name in names:
        double.put(f"{queue}/{name}", b"{}")
    double.put(f"{queue}/sub/deep.json", b"{}")

    page = dbx.files_list_folder(queue)
    pages = [page]
    while page.has_more:
        page = dbx.files_list_folder_continue(page.cursor)
        pages.append(page)
    assert [len(p.entries) for p in pages] == [3, 3, 3]
    entries = [e for p in pages for e in p.entries]
    assert {e.name for e in entries} == names | {"sub"}
    assert {type(e) for e in entries} == {FileMetadata, FolderMetadata}
    assert (double.calls["files/list_folder"], double.calls["files/list_folder/continue"]) == (1, 2)
    assert dbx.files_list_folder_continue(page.cursor).entries == []  # the end stays the end

    # sqooler lists with a trailing slash; the root is ""; recursive includes the folder itself
    assert len(dbx.files_list_folder(queue + "/", limit=50).entries) == 3  # page_size caps it
    assert [e.name for e in dbx.files_list_folder("").entries] == ["Backend_files"]
    page = dbx.files_list_folder(queue, recursive=True)
    everything = list(page.entries)
    while page.has_more:
        page = dbx.files_list_folder_continue(page.cursor)
        everything += page.entries
    assert everything[0].path_display == queue
    assert len(everything) == 11

    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_list_folder("/Backend_files/Queued_Jobs/bosons")
    assert route_error(caught).get_path().is_not_found()
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_list_folder(f"{queue}/job-1.json")
    assert route_error(caught).get_path().is_not_folder()
    with pytest.raises(exceptions.BadInputError):
        dbx.files_list_folder("/")  # "Specify the root folder as an empty string"
    with pytest.raises(exceptions.BadInputError):
        dbx.files_list_folder_continue("AAD-not-a-cursor")


# ----------------------------------------------------------------------------- move, delete


def test_move_v2(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    original = dbx.files_upload(b"job", "/Backend_files/Queued_Jobs/fermions/job-1.json")
    moved = dbx.files_move_v2(
        "/Backend_files/Queued_Jobs/fermions/job-1.json", "/Backend_files/Running_Jobs/job-1.json"
    ).metadata
    assert isinstance(moved, FileMetadata)
    assert moved.path_display == "/Backend_files/Running_Jobs/job-1.json"  # parents created
    assert moved.id == original.id
    assert double.paths() == ["/Backend_files/Running_Jobs/job-1.json"]
    assert "/Backend_files/Queued_Jobs/fermions" in double.folders()  # the folder stays

    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_move_v2("/Backend_files/Queued_Jobs/fermions/job-1.json", "/elsewhere.json")
    error = route_error(caught)
    assert error.is_from_lookup() and error.get_from_lookup().is_not_found()

    double.put("/Backend_files/Deleted_Jobs/job-1.json", b"old")
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_move_v2(
            "/Backend_files/Running_Jobs/job-1.json", "/Backend_files/Deleted_Jobs/job-1.json"
        )
    error = route_error(caught)
    assert error.is_to() and error.get_to().get_conflict().is_file()

    # a folder moves with its contents; a change of case alone is a rename
    folder = dbx.files_move_v2("/Backend_files/Running_Jobs", "/Archive/Running").metadata
    assert isinstance(folder, FolderMetadata)
    assert double.read("/archive/running/job-1.json") == b"job"
    dbx.files_move_v2("/Archive/Running", "/Archive/RUNNING")
    assert "/Archive/RUNNING/job-1.json" in double.paths()
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_move_v2("/Archive", "/Archive/RUNNING/inner")
    assert route_error(caught).is_cant_move_folder_into_itself()


def test_concurrent_moves_of_one_file_only_one_wins(double: DropboxDouble) -> None:
    clients = [double.client(max_retries_on_error=0) for _ in range(2)]
    for client in clients:
        client.users_get_current_account()  # token and connection ready before the race
    for round_ in range(15):
        double.put(f"/q/job-{round_}.json", b"{}")
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def claim(
            client: dropbox.Dropbox,
            who: int,
            job: int = round_,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            barrier.wait()
            try:
                client.files_move_v2(f"/q/job-{job}.json", f"/running/{who}/job-{job}.json")
                outcomes.append("won")
            except exceptions.ApiError as exc:
                assert exc.error.get_from_lookup().is_not_found()
                outcomes.append("lost")

        threads = [threading.Thread(target=claim, args=(c, i)) for i, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(outcomes) == ["lost", "won"]
    assert len(double.paths()) == 15
    for client in clients:
        client.close()


def test_delete_v2(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    double.put("/Backend_files/Queued_Jobs/fermions/job-1.json", b"{}")
    double.put("/Backend_files/Queued_Jobs/fermions/job-2.json", b"{}")
    deleted = dbx.files_delete_v2("/backend_files/queued_jobs/fermions/JOB-1.json").metadata
    assert isinstance(deleted, FileMetadata) and deleted.name == "job-1.json"
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_delete_v2("/Backend_files/Queued_Jobs/fermions/job-1.json")
    error = route_error(caught)
    assert error.is_path_lookup() and error.get_path_lookup().is_not_found()

    dbx.files_delete_v2("/Backend_files/Queued_Jobs/fermions/job-2.json")
    listing = dbx.files_list_folder("/Backend_files/Queued_Jobs")
    assert [e.name for e in listing.entries] == ["fermions"]  # an empty folder stays
    assert dbx.files_list_folder("/Backend_files/Queued_Jobs/fermions").entries == []

    double.put("/Backend_files/Queued_Jobs/fermions/job-3.json", b"{}")
    assert isinstance(dbx.files_delete_v2("/Backend_files").metadata, FolderMetadata)
    assert double.paths() == [] and double.folders() == []

    meta = dbx.files_upload(b"1", "/r.json")
    with pytest.raises(exceptions.ApiError):
        dbx.files_delete_v2("/r.json", parent_rev="0" * 9 + "abc")
    dbx.files_delete_v2("/r.json", parent_rev=meta.rev)


def test_create_folder_v2(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    made = dbx.files_create_folder_v2("/Backend_files/Config").metadata
    assert isinstance(made, FolderMetadata) and made.path_display == "/Backend_files/Config"
    with pytest.raises(exceptions.ApiError) as caught:
        dbx.files_create_folder_v2("/backend_files/config")
    assert route_error(caught).get_path().get_conflict().is_folder()
    assert dbx.files_create_folder_v2("/Backend_files/Config", autorename=True).metadata.name == (
        "Config (1)"
    )


# ----------------------------------------------------------------------------- auth


def test_expired_access_token_is_refreshed_and_retried(
    double: DropboxDouble, dbx: dropbox.Dropbox
) -> None:
    dbx.files_upload(b"{}", "/a.json")
    assert double.calls["oauth2/token"] == 1
    double.expire_access_tokens()
    meta, response = dbx.files_download("/a.json")
    assert response.content == b"{}"
    assert double.calls["oauth2/token"] == 2
    assert double.calls["files/download"] == 2  # refused once, then served


def test_token_lifetime_and_bearer_checks(double: DropboxDouble) -> None:
    double.token_lifetime = 1
    answer = requests.post(
        f"{BASE}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": double.REFRESH_TOKEN},
        auth=(double.APP_KEY, double.APP_SECRET),  # app auth by HTTP Basic
        timeout=10,
    )
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 1)
    assert rpc("files/list_folder", {"path": ""}, body["access_token"]).status_code == 200
    time.sleep(1.1)
    refused = rpc("files/list_folder", {"path": ""}, body["access_token"])
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/json"
    assert refused.json()["error"] == {".tag": "expired_access_token"}
    assert refused.json()["error_summary"].startswith("expired_access_token/")

    unknown = rpc("files/list_folder", {"path": ""}, "sl.not-a-token")
    assert unknown.status_code == 401 and unknown.json()["error"][".tag"] == "invalid_access_token"
    missing = requests.post(f"{BASE}/2/files/list_folder", json={"path": ""}, timeout=10)
    assert missing.status_code == 400 and "Authorization" in missing.text


def test_revoked_access_is_an_auth_error(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    dbx.users_get_current_account()
    double.revoke()
    with pytest.raises(exceptions.AuthError) as caught:
        dbx.files_list_folder("")
    assert caught.value.error.is_invalid_access_token()
    fresh = double.client()
    with pytest.raises(exceptions.AuthError):  # the refresh itself: 400 invalid_grant
        fresh.files_list_folder("")
    answer = requests.post(
        f"{BASE}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": double.REFRESH_TOKEN,
            "client_id": double.APP_KEY,
            "client_secret": double.APP_SECRET,
        },
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    double.unrevoke()
    assert fresh.files_list_folder("").entries == []


def test_wrong_app_credentials_are_bad_input(double: DropboxDouble) -> None:
    client = dropbox.Dropbox(
        app_key=double.APP_KEY, app_secret="wrong", oauth2_refresh_token=double.REFRESH_TOKEN
    )
    with pytest.raises(exceptions.BadInputError) as caught:
        client.users_get_current_account()
    assert "invalid_client" in caught.value.message
    client = dropbox.Dropbox(
        app_key=double.APP_KEY, app_secret=double.APP_SECRET, oauth2_refresh_token="other"
    )
    with pytest.raises(exceptions.AuthError):
        client.users_get_current_account()


def test_get_current_account(dbx: dropbox.Dropbox) -> None:
    account = dbx.users_get_current_account()
    assert account.account_id == DropboxDouble.ACCOUNT_ID and len(account.account_id) == 40
    assert account.email == DropboxDouble.EMAIL and account.account_type.is_basic()
    assert account.name.display_name == "Qlued Lab"
    assert account.root_info.root_namespace_id == account.root_info.home_namespace_id


# ----------------------------------------------------------------------------- faults


def test_rate_limit_carries_retry_after(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    double.inject("files/upload", 429, retry_after=7)
    with pytest.raises(exceptions.RateLimitError) as caught:
        dbx.files_upload(b"{}", "/a.json")
    assert caught.value.backoff == 7
    assert caught.value.error.reason.is_too_many_requests()
    dbx.files_upload(b"{}", "/a.json")  # one fault, consumed

    patient = double.client()  # retries on 429 after Retry-After seconds
    patient.users_get_current_account()  # (the SDK does not retry a refused token refresh)
    double.inject(None, 429, retry_after=1)
    started = time.monotonic()
    patient.files_get_metadata("/a.json")
    assert time.monotonic() - started >= 1
    double.inject("files/list_folder", 429, retry_after=3)  # the answer itself
    answer = rpc("files/list_folder", {"path": ""})
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert answer.json()["error"] == {"reason": {".tag": "too_many_requests"}, "retry_after": 3}


def test_server_errors(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    dbx.files_upload(b"{}", "/a.json")
    double.inject("files/download", 500)
    with pytest.raises(exceptions.InternalServerError) as caught:
        dbx.files_download("/a.json")
    assert caught.value.status_code == 500
    double.inject(None, 503, times=2)
    for _ in range(2):
        with pytest.raises(exceptions.InternalServerError) as caught:
            dbx.files_list_folder("")
        assert caught.value.status_code == 503
    assert dbx.files_download("/a.json")[1].content == b"{}"
    double.inject("oauth2/token", 503)
    with pytest.raises(exceptions.InternalServerError):
        double.client(max_retries_on_error=0).users_get_current_account()


def test_malformed_requests_are_400(double: DropboxDouble) -> None:
    token = access_token()
    cases = [
        rpc("files/list_folder", None, token, data=b"{not json"),
        rpc("files/list_folder", {}, token),
        rpc("files/list_folder", {"path": "", "colour": "red"}, token),
        rpc("files/list_folder", {"path": "relative"}, token),
        rpc("files/list_folder", {"path": ""}, token, headers={"Content-Type": "text/plain"}),
        rpc("files/upload", None, token, data=b"x"),  # no Dropbox-API-Arg
        rpc("files/nothing_here", {"path": ""}, token),
    ]
    for answer in cases:
        assert answer.status_code == 400, answer.text
        assert answer.headers["Content-Type"].startswith("text/plain")
    assert rpc("files/list_folder", {"path": ""}, token).status_code == 200


# ----------------------------------------------------------------------------- the server


def test_reset_forgets_everything(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    dbx.files_upload(b"{}", "/a/b.json")
    double.inject(None, 500, times=5)
    double.revoke()
    double.reset()
    assert double.paths() == [] and double.folders() == [] and not double.calls
    fresh = double.client(max_retries_on_error=0)
    assert fresh.files_list_folder("").entries == []
    with pytest.raises(exceptions.AuthError):
        dbx.files_list_folder("")  # its token was forgotten with the others


def test_stop_and_start_is_an_outage_that_keeps_the_files(
    double: DropboxDouble, dbx: dropbox.Dropbox
) -> None:
    dbx.files_upload(b"kept", "/a.json")
    double.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        dbx.files_download("/a.json")
    double.start()
    assert dbx.files_download("/a.json")[1].content == b"kept"


def test_connections_are_kept_alive(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    for i in range(10):
        dbx.files_upload(b"{}", f"/k/{i}.json")
        assert dbx.files_download(f"/k/{i}.json")[1].content == b"{}"  # read: back to the pool
    assert double.connections == 1


def test_parallel_clients(double: DropboxDouble) -> None:
    def work(who: int) -> None:
        with double.client() as client:
            for i in range(15):
                client.files_upload(b"%d" % i, f"/p/{who}/{i}.json")
                assert client.files_download(f"/p/{who}/{i}.json")[1].content == b"%d" % i

    threads = [threading.Thread(target=work, args=(who,)) for who in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(double.paths()) == 60
    assert double.calls["files/upload"] == 60


CLAIM_SCRIPT = """
import json, sys, time
from pathlib import Path
import dropbox
from dropbox.exceptions import ApiError

key, secret, refresh, who, go = sys.argv[1:6]
won = []
with dropbox.Dropbox(app_key=key, app_secret=secret, oauth2_refresh_token=refresh) as dbx:
    dbx.users_get_current_account()
    Path(go + "." + who).touch()
    while not Path(go).exists():
        time.sleep(0.01)
    for i in range(20):
        try:
            dbx.files_move_v2(f"/queue/job-{i}.json", f"/running/{who}/job-{i}.json")
            won.append(i)
        except ApiError as err:
            assert err.error.get_from_lookup().is_not_found()
print(json.dumps(won))
"""


def test_claims_from_two_processes(double: DropboxDouble, tmp_path: Path) -> None:
    for i in range(20):
        double.put(f"/queue/job-{i}.json", b"{}")
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM_SCRIPT, *double.login().values(), str(who), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{who}").exists() for who in range(2)):
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers)
        time.sleep(0.01)
    go.touch()
    won = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        won.append(json.loads(out))
    assert sorted(won[0] + won[1]) == list(range(20))  # each job claimed exactly once
    assert len(double.paths()) == 20 and not any(p.startswith("/queue/") for p in double.paths())


def test_environment_and_latency(double: DropboxDouble, dbx: dropbox.Dropbox) -> None:
    assert ensure_environment() == ADDRESS
    assert (
        os.environ["DROPBOX_API_HOST"] == os.environ["DROPBOX_API_CONTENT_HOST"] == (ADDRESS.netloc)
    )
    assert os.environ["REQUESTS_CA_BUNDLE"] == os.environ["CURL_CA_BUNDLE"]
    assert ADDRESS.ca_file.read_bytes() in Path(os.environ["REQUESTS_CA_BUNDLE"]).read_bytes()
    assert ADDRESS.netloc == dropbox.session.API_HOST
    dbx.users_get_current_account()
    double.latency = 0.2
    started = time.monotonic()
    dbx.files_list_folder("")
    assert time.monotonic() - started >= 0.2


SQOOLER_SDK_SCRIPT = """
import json, sys
import dropbox
from dropbox.exceptions import ApiError, AuthError
from dropbox.files import WriteMode

key, secret, refresh = sys.argv[1:4]
out = {"version": dropbox.__version__}
with dropbox.Dropbox(app_key=key, app_secret=secret, oauth2_refresh_token=refresh) as dbx:
    dbx.users_get_current_account()
    queue = "/Backend_files/Queued_Jobs/fermions"
    for i in range(4):
        dbx.files_upload(b'{"n": %d}' % i, f"{queue}/job-{i}.json", mode=WriteMode("overwrite"))
    try:
        dbx.files_upload(b"other", f"{queue}/job-0.json")
    except ApiError as err:
        out["conflict"] = err.error.get_path().reason.get_conflict().is_file()
    out["download"] = dbx.files_download(f"{queue}/job-0.json")[1].content.decode()
    first = dbx.files_list_folder(path=queue + "/")
    out["first_page"] = len(first.entries)
    out["has_more"] = first.has_more
    rest = dbx.files_list_folder_continue(first.cursor)
    out["names"] = sorted(e.name for e in first.entries + rest.entries)
    dbx.files_get_metadata(f"{queue}/job-1.json")
    dbx.files_move_v2(f"{queue}/job-1.json", "/Backend_files/Running_Jobs/job-1.json")
    try:
        dbx.files_move_v2(f"{queue}/job-1.json", "/Backend_files/Running_Jobs/job-1.json")
    except ApiError as err:
        out["move_lost"] = err.error.get_from_lookup().is_not_found()
    dbx.files_delete_v2(f"{queue}/job-2.json")
    try:
        dbx.files_delete_v2(f"{queue}/job-2.json")
    except ApiError as err:
        out["delete_missing"] = err.error.get_path_lookup().is_not_found()
    try:
        dbx.files_download("/nothing.json")
    except ApiError as err:
        out["download_missing"] = err.error.get_path().is_not_found()
print(json.dumps(out))
"""


def test_sqooler_sdk_works_against_the_double(double: DropboxDouble) -> None:
    python = ensure_venv("sqooler", SQOOLER)
    run = subprocess.run(
        [str(python), "-c", SQOOLER_SDK_SCRIPT, *double.login().values()],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **ADDRESS.environ()},
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out == {
        "version": "11.36.2",
        "conflict": True,
        "download": '{"n": 0}',
        "first_page": 3,
        "has_more": True,
        "names": ["job-0.json", "job-1.json", "job-2.json", "job-3.json"],
        "move_lost": True,
        "delete_missing": True,
        "download_missing": True,
    }
    assert double.paths() == [
        "/Backend_files/Queued_Jobs/fermions/job-0.json",
        "/Backend_files/Queued_Jobs/fermions/job-3.json",
        "/Backend_files/Running_Jobs/job-1.json",
    ]
