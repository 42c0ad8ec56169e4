"""The local folder provider: SPEC §6's layout as a spooler reads it, and the §7 lifecycle."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
from bson import objectid

from storage_providers import (
    AlreadyExists,
    InvalidName,
    LocalProvider,
    NotFound,
    Place,
    Ref,
    StorageError,
    Unavailable,
)
from tests.conftest import FERMIONS_CONFIG

EXPERIMENT = {"instructions": [["load", [0], []]], "num_wires": 8, "shots": 2}
JOB = {"experiment_0": {**EXPERIMENT, "wire_order": "interleaved"}}
RESULT = {"job_id": "x", "status": "INITIALIZING", "results": [], "success": True, "header": {}}
LEASE = 600


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def spooler_queue(base: Path, display: str) -> list[str]:
    """The queue as a sqooler-style spooler lists it: `*.json` in the backend's folder."""
    return sorted(p.stem for p in (base / "jobs/queued" / display).glob("*.json"))


def every_file(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


@pytest.fixture
def local(tmp_path: Path) -> LocalProvider:
    """A provider on an empty folder with the fermions config (no database involved)."""
    provider = LocalProvider("alqor", tmp_path / "store")
    provider.upload_config("fermions", dict(FERMIONS_CONFIG))
    return provider


def submit(local: LocalProvider, job_id: str | None = None, display: str = "fermions") -> str:
    job_id = job_id or local.new_job_id(display, "alice")
    local.submit_job(display, job_id, JOB)
    return job_id


# ---- what post_job leaves on disk -----------------------------------------------------------


def test_post_job_leaves_the_status_and_the_queued_job_where_spoolers_read_them(
    client, storage, token, storage_path
):
    job = json.dumps({"experiment_0": EXPERIMENT})
    response = client.post(
        "/api/v2/alqor_fermions_simulator/post_job",
        {"job": job, "token": token},
        content_type="application/json",
    )
    job_id = response.json()["job_id"]

    assert spooler_queue(storage_path, "fermions") == [job_id]
    assert read_json(storage_path / f"jobs/queued/fermions/{job_id}.json") == JOB
    assert read_json(storage_path / f"status/fermions/{job_id}.json") == {
        "job_id": job_id,
        "status": "INITIALIZING",
        "detail": "Got your json.",
        "error_message": "None",
    }
    assert every_file(storage_path) == [
        "backends/configs/fermions.json",
        f"jobs/queued/fermions/{job_id}.json",
        f"status/fermions/{job_id}.json",
    ]


def test_configs_are_one_file_per_display_name(local):
    base = local.base_path

    assert read_json(base / "backends/configs/fermions.json") == FERMIONS_CONFIG
    assert local.list_backends() == ["fermions"]


def test_the_backend_list_ignores_temporary_and_foreign_files(local):
    folder = local.base_path / "backends/configs"
    (folder / ".fermions.0123abcd.tmp").write_text("{")
    (folder / "README.txt").write_text("notes")
    (folder / "Bad Name.json").write_text("{}")
    (folder / "bad_name.json").write_text("{}")

    assert local.list_backends() == ["fermions"]


# ---- job ids --------------------------------------------------------------------------------


def test_job_ids_are_24_lowercase_hex(local):
    ids = [local.new_job_id("fermions", "alice") for _ in range(50)]

    assert all(re.fullmatch(r"[0-9a-f]{24}", job_id) for job_id in ids)
    assert len(set(ids)) == 50


def test_job_ids_sort_by_age_across_seconds(local, monkeypatch):
    """The creation second leads the id, whatever the counter after it says."""
    ids = []
    for second, counter in ((1_700_000_000, 900), (1_700_000_001, 500), (1_700_000_002, 0)):
        monkeypatch.setattr(objectid.time, "time", lambda s=second: float(s))
        monkeypatch.setattr(objectid.ObjectId, "_inc", counter)
        ids.append(local.new_job_id("fermions", "alice"))

    assert sorted(ids) == ids


def test_job_ids_made_within_a_second_sort_in_order_of_making(local):
    ids = [local.new_job_id("fermions", "alice") for _ in range(200)]

    assert sorted(ids) == ids


# ---- atomic writes --------------------------------------------------------------------------


def test_a_reader_never_sees_half_a_document(local):
    """A reader racing a writer that keeps replacing a large status only ever sees whole ones."""
    job_id = submit(local)
    ref = Ref(Place.STATUS, job_id, "fermions")
    docs = [{"job_id": job_id, "status": "QUEUED", "detail": letter * 400_000} for letter in "ab"]
    path = local.base_path / f"status/fermions/{job_id}.json"
    done = threading.Event()
    seen: list[str] = []

    def reader() -> None:
        while not done.is_set():
            seen.append(json.loads(path.read_bytes())["detail"][:1])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(60):
            local.write(ref, docs[i % 2])
    finally:
        done.set()
        thread.join()

    assert seen
    assert set(seen) <= {"a", "b", "G"}  # "G": the initial "Got your json."


def test_a_failed_write_leaves_the_old_document_and_no_partial_file(local, monkeypatch):
    job_id = submit(local)
    ref = Ref(Place.STATUS, job_id, "fermions")
    before = every_file(local.base_path)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageError):
        local.write(ref, {"job_id": job_id, "status": "DONE", "detail": "d", "error_message": ""})

    assert local.read(ref)["status"] == "INITIALIZING"
    assert every_file(local.base_path) == before


def test_no_write_leaves_a_file_that_does_not_end_in_json_behind(local):
    job_id = submit(local)
    claim = local.claim_next("fermions", owner="s1")
    local.renew(claim)
    local.finish(claim, {**RESULT, "job_id": job_id}, "done")

    assert [f for f in every_file(local.base_path) if not f.endswith(".json")] == []


def test_a_created_document_is_never_overwritten(local):
    job_id = submit(local)
    ref = Ref(Place.STATUS, job_id, "fermions")

    with pytest.raises(AlreadyExists):
        local.write(ref, {"status": "DONE"}, create=True)
    with pytest.raises(AlreadyExists):
        local.submit_job("fermions", job_id, JOB)

    assert local.read(ref)["status"] == "INITIALIZING"
    assert [f for f in every_file(local.base_path) if ".tmp" in f] == []


def test_a_writer_killed_before_naming_a_new_document_leaves_nothing_behind(local):
    """A worker that dies mid-post leaves no temporary file for the operator to find."""
    job_id = local.new_job_id("fermions", "alice")
    before = every_file(local.base_path)
    child = os.fork()
    if child == 0:  # the writer: it dies just before the document would get its name
        os.link = lambda *args, **kwargs: os._exit(0)  # type: ignore[assignment]
        try:
            local.write(Ref(Place.STATUS, job_id, "fermions"), {"status": "x"}, create=True)
        finally:
            os._exit(1)
    _, code = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(code) == 0  # it did die there
    assert every_file(local.base_path) == before


def test_new_documents_are_still_written_where_proc_cannot_name_open_files(
    local, tmp_path, monkeypatch
):
    """Without a usable /proc the named temporary file serves, and nothing is lost."""
    from storage_providers import local as medium

    unnamed = medium._Unnamed()
    monkeypatch.setattr(medium, "_UNNAMED", unnamed)
    made = unnamed.open(str(local.base_path))  # it opens /proc, then a file
    assert made is not None
    os.close(made)
    not_proc = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # has no self/fd/N
    monkeypatch.setattr(unnamed, "_proc", not_proc)
    try:
        job_id = submit(local)
        second = submit(local)
    finally:
        os.close(not_proc)

    assert not unnamed.usable
    assert spooler_queue(local.base_path, "fermions") == sorted([job_id, second])
    assert local.get_status("fermions", job_id)["status"] == "INITIALIZING"
    assert [f for f in every_file(local.base_path) if not f.endswith(".json")] == []


def test_a_document_a_foreign_writer_is_rewriting_in_place_is_read_once_whole(local):
    """sqooler truncates and rewrites files in place: the reader waits that out."""
    job_id = submit(local)
    path = local.base_path / f"status/fermions/{job_id}.json"
    path.write_text('{"job_id": "')
    timer = threading.Timer(0.01, lambda: path.write_text('{"status": "DONE"}'))
    timer.start()
    try:
        assert local.get_status("fermions", job_id) == {"status": "DONE"}
    finally:
        timer.join()


def test_a_document_that_stays_half_written_is_unavailable_not_a_crash(local):
    job_id = submit(local)
    (local.base_path / f"status/fermions/{job_id}.json").write_text('{"job_id": "')

    with pytest.raises(Unavailable):
        local.get_status("fermions", job_id)


def test_a_folder_removed_under_the_provider_is_made_again(local):
    job_id = submit(local)
    for path in (local.base_path / "status/fermions").iterdir():
        path.unlink()
    (local.base_path / "status/fermions").rmdir()

    local.write(Ref(Place.STATUS, job_id, "fermions"), {"status": "QUEUED"})

    assert local.get_status("fermions", job_id) == {"status": "QUEUED"}


def test_a_write_that_fails_again_after_its_folder_vanished_is_a_storage_error(local, monkeypatch):
    job_id = submit(local)
    failures = iter([FileNotFoundError(2, "gone"), OSError(28, "No space left on device")])
    real_open = os.open

    def flaky_open(path, flags, mode=0o777):  # type: ignore[no-untyped-def]
        error = next(failures, None)
        if error is not None:
            raise error
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", flaky_open)

    with pytest.raises(Unavailable):
        local.write(Ref(Place.STATUS, job_id, "fermions"), {"status": "DONE"})


# ---- where the lifecycle leaves its files (the lifecycle itself: tests/storage/) -------------


def test_each_step_of_a_job_leaves_its_files_where_spoolers_look(local):
    base = local.base_path
    done, failed = submit(local), submit(local)

    claim = local.claim_next("fermions", owner="s1")
    assert read_json(base / f"jobs/running/{done}.json") == JOB
    assert read_json(base / f"jobs/leases/{done}.json")["owner"] == "s1"
    local.finish(claim, {**RESULT, "job_id": done}, "Done.")
    local.fail(local.claim_next("fermions", owner="s1"), "no")

    assert spooler_queue(base, "fermions") == []
    assert every_file(base) == sorted(
        [
            "backends/configs/fermions.json",
            f"jobs/deleted/{failed}.json",
            f"jobs/finished/fermions/{done}.json",
            f"results/fermions/{done}.json",
            f"status/fermions/{done}.json",
            f"status/fermions/{failed}.json",
        ]
    )
    assert read_json(base / f"status/fermions/{failed}.json")["status"] == "ERROR"


BAD_NAMES = ["../x", "..", "", "Fermions", "a b", "a/b", "a\x00b", "fermions.json", "a_b"]
GOOD_ID = "65a000000000000000000001"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_provider_cannot_be_given_an_invalid_name(tmp_path, name):
    with pytest.raises(InvalidName):
        LocalProvider(name, tmp_path)


def test_a_provider_folder_that_does_not_exist_yet_is_created_on_first_write(tmp_path):
    base = tmp_path / "not" / "yet"
    provider = LocalProvider("alqor", base)

    assert provider.list_backends() == []
    assert provider.claim_next("fermions", owner="s") is None
    provider.upload_config("fermions", dict(FERMIONS_CONFIG))
    assert provider.list_backends() == ["fermions"]


def test_a_provider_whose_folder_is_a_file_raises_storage_errors_not_oserrors(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    provider = LocalProvider("alqor", blocker)

    for call in (
        provider.list_backends,
        lambda: provider.get_config("fermions"),
        lambda: provider.submit_job("fermions", GOOD_ID, JOB),
        lambda: provider.claim_next("fermions", owner="s"),
    ):
        with pytest.raises(StorageError) as caught:
            call()
        assert not isinstance(caught.value, NotFound)
