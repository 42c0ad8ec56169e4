"""The local folder provider: SPEC §6's layout as a spooler reads it, and the §7 lifecycle."""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import datetime, timedelta
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
from storage_providers.schemas import utcnow
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


# ---- claiming -------------------------------------------------------------------------------


def test_claim_takes_the_oldest_job_first_whatever_the_order_of_submission(local):
    ids = ["65a000000000000000000003", "65a000000000000000000001", "65a000000000000000000002"]
    for job_id in ids:
        submit(local, job_id)

    claimed = [local.claim_next("fermions", owner="s1").job_id for _ in ids]

    assert claimed == sorted(ids)
    assert local.claim_next("fermions", owner="s1") is None


def test_claim_moves_the_job_to_running_and_writes_its_lease(local):
    job_id = submit(local)
    before = utcnow()

    claim = local.claim_next("fermions", owner="spooler-1")

    base = local.base_path
    assert (claim.job_id, claim.display, claim.job, claim.owner, claim.attempts) == (
        job_id,
        "fermions",
        JOB,
        "spooler-1",
        1,
    )
    assert spooler_queue(base, "fermions") == []
    assert read_json(base / f"jobs/running/{job_id}.json") == JOB
    lease = read_json(base / f"jobs/leases/{job_id}.json")
    # the four fields SPEC §7 names (a lease may carry more)
    assert (lease["display_name"], lease["owner"], lease["attempts"]) == (
        "fermions",
        "spooler-1",
        1,
    )
    assert before <= datetime.fromisoformat(lease["claimed_at"]) <= utcnow()


def test_claim_writes_no_status(local):
    job_id = submit(local)

    local.claim_next("fermions", owner="s1")

    assert local.get_status("fermions", job_id)["status"] == "INITIALIZING"


def test_claim_only_looks_at_its_own_backends_queue(local):
    local.upload_config("spins", {**FERMIONS_CONFIG, "display_name": "spins"})
    submit(local, display="spins")

    assert local.claim_next("fermions", owner="s1") is None
    assert local.claim_next("spins", owner="s1") is not None


def test_a_job_another_spooler_took_meanwhile_is_skipped(local, monkeypatch):
    first, second = submit(local), submit(local)
    original = local.list_ids

    def stale_listing(place, display=""):  # type: ignore[no-untyped-def]
        ids = original(place, display)
        if place is Place.QUEUED:  # someone claims the first one right after our listing
            (local.base_path / f"jobs/queued/fermions/{first}.json").rename(
                local.base_path / f"jobs/running/{first}.json"
            )
        return ids

    (local.base_path / "jobs/running").mkdir(parents=True)
    monkeypatch.setattr(local, "list_ids", stale_listing)

    assert local.claim_next("fermions", owner="s1").job_id == second


# ---- finishing and failing ------------------------------------------------------------------


class Recording(LocalProvider):
    """A local provider that notes every write, move and delete, in order."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.steps: list[tuple[str, str]] = []

    def write(self, ref, doc, *, create=False):  # type: ignore[no-untyped-def]
        self.steps.append(("write", str(ref.place)))
        super().write(ref, doc, create=create)

    def move(self, src, dst):  # type: ignore[no-untyped-def]
        self.steps.append(("move", f"{src.place}->{dst.place}"))
        super().move(src, dst)

    def delete(self, ref):  # type: ignore[no-untyped-def]
        self.steps.append(("delete", str(ref.place)))
        super().delete(ref)


@pytest.fixture
def recording(local: LocalProvider) -> Recording:
    return Recording("alqor", local.base_path)


def test_submit_writes_the_status_before_the_queued_job(recording):
    submit(recording)

    assert recording.steps == [("write", "status"), ("write", "queued")]


def test_finish_writes_result_then_finished_then_status_done_then_releases(recording):
    job_id = submit(recording)
    claim = recording.claim_next("fermions", owner="s1")
    recording.steps.clear()
    result = {**RESULT, "job_id": job_id}

    assert recording.finish(claim, result, "All went well.") is True

    base = recording.base_path
    assert recording.steps == [
        ("write", "results"),
        ("move", "running->finished"),
        ("write", "status"),
        ("delete", "leases"),
    ]
    assert read_json(base / f"results/fermions/{job_id}.json") == result
    assert read_json(base / f"jobs/finished/fermions/{job_id}.json") == JOB
    assert read_json(base / f"status/fermions/{job_id}.json") == {
        "job_id": job_id,
        "status": "DONE",
        "detail": "All went well.",
        "error_message": "None",
    }
    assert not (base / f"jobs/running/{job_id}.json").exists()
    assert not (base / f"jobs/leases/{job_id}.json").exists()


def test_fail_moves_the_job_to_deleted_and_writes_error(recording):
    job_id = submit(recording)
    claim = recording.claim_next("fermions", owner="s1")
    recording.steps.clear()
    reason = "experiment_0, instruction 0 (load): mode 0 is already occupied"

    assert recording.fail(claim, reason) is True

    base = recording.base_path
    assert recording.steps == [
        ("move", "running->deleted"),
        ("write", "status"),
        ("delete", "leases"),
    ]
    assert read_json(base / f"jobs/deleted/{job_id}.json") == JOB
    assert read_json(base / f"status/fermions/{job_id}.json") == {
        "job_id": job_id,
        "status": "ERROR",
        "detail": reason,
        "error_message": reason,
    }
    assert not (base / f"jobs/running/{job_id}.json").exists()
    assert not (base / f"jobs/leases/{job_id}.json").exists()
    assert not (base / f"results/fermions/{job_id}.json").exists()


def test_a_spooler_that_lost_its_lease_writes_nothing(local):
    job_id = submit(local)
    claim = local.claim_next("fermions", owner="s1")
    local.reap_expired(LEASE, now=utcnow() + timedelta(seconds=LEASE + 1))
    again = local.claim_next("fermions", owner="s2")
    before = every_file(local.base_path)

    assert local.renew(claim) is False
    assert local.finish(claim, {**RESULT, "job_id": job_id}, "late") is False
    assert local.fail(claim, "late") is False
    assert every_file(local.base_path) == before
    assert local.holds(again)


# ---- leases running out ---------------------------------------------------------------------


def expire(local: LocalProvider) -> list[str]:
    return local.reap_expired(LEASE, now=utcnow() + timedelta(seconds=LEASE + 1))


def test_a_live_lease_is_left_alone(local):
    submit(local)
    local.claim_next("fermions", owner="s1")

    assert local.reap_expired(LEASE, now=utcnow() + timedelta(seconds=LEASE - 5)) == []
    assert local.list_ids(Place.RUNNING) != []


def test_a_renewed_lease_runs_from_its_renewal(local, monkeypatch):
    submit(local)
    claim = local.claim_next("fermions", owner="s1")
    later = utcnow() + timedelta(seconds=LEASE - 10)
    monkeypatch.setattr("storage_providers.base.utcnow", lambda: later)
    assert local.renew(claim)

    handed_back = local.reap_expired(LEASE, now=later + timedelta(seconds=LEASE - 10))

    assert handed_back == []


def test_an_expired_job_goes_back_to_its_queue_under_its_own_id(local):
    job_id = submit(local)
    local.claim_next("fermions", owner="s1")
    newer = submit(local)

    assert expire(local) == [job_id]

    base = local.base_path
    assert spooler_queue(base, "fermions") == sorted([job_id, newer])
    assert read_json(base / f"jobs/queued/fermions/{job_id}.json") == JOB
    assert local.list_ids(Place.RUNNING) == []
    lease = read_json(base / f"jobs/leases/{job_id}.json")
    assert [lease[k] for k in ("display_name", "claimed_at", "owner", "attempts")] == [
        "fermions",
        None,
        None,
        1,
    ]
    # it keeps its place: the next claim takes it before the newer job
    assert local.claim_next("fermions", owner="s2").job_id == job_id


def test_a_job_whose_lease_ran_out_three_times_crashed_the_spooler(local):
    job_id = submit(local)
    attempts = []
    for _ in range(2):
        attempts.append(local.claim_next("fermions", owner="s").attempts)
        assert expire(local) == [job_id]
        assert spooler_queue(local.base_path, "fermions") == [job_id]
    attempts.append(local.claim_next("fermions", owner="s").attempts)

    assert expire(local) == [job_id]

    base = local.base_path
    assert attempts == [1, 2, 3]
    assert spooler_queue(base, "fermions") == []
    assert local.list_ids(Place.RUNNING) == []
    assert read_json(base / f"jobs/deleted/{job_id}.json") == JOB
    assert read_json(base / f"status/fermions/{job_id}.json") == {
        "job_id": job_id,
        "status": "ERROR",
        "detail": "The job crashed the spooler.",
        "error_message": "The job crashed the spooler.",
    }
    assert not (base / f"jobs/leases/{job_id}.json").exists()


def test_a_running_job_without_a_lease_gets_one_and_then_runs_out(local):
    """Its claimer died between the move and the lease: the clock starts when it is found."""
    job_id = submit(local)
    local.move(Ref(Place.QUEUED, job_id, "fermions"), Ref(Place.RUNNING, job_id))
    found = utcnow()

    assert local.reap_expired(LEASE, now=found) == []
    lease = read_json(local.base_path / f"jobs/leases/{job_id}.json")
    assert (lease["display_name"], lease["owner"], lease["attempts"]) == ("fermions", "", 1)

    assert local.reap_expired(LEASE, now=found + timedelta(seconds=LEASE + 1)) == [job_id]
    assert spooler_queue(local.base_path, "fermions") == [job_id]


# ---- names and ids never reach a path -------------------------------------------------------


BAD_NAMES = ["../x", "..", "", "Fermions", "a b", "a/b", "a\x00b", "fermions.json", "a_b"]
BAD_IDS = [
    "../../backends/configs/fermions",
    "",
    "abc",
    "0123456789ABCDEF01234567",
    "0123456789abcdef0123456/",
    "0123456789abcdef0123456\x00",
    "0123456789abcdef012345678",
    "/etc/passwd",
]
GOOD_ID = "65a000000000000000000001"


def calls_with_name(local: LocalProvider, name: str) -> list:
    return [
        lambda: local.get_config(name),
        lambda: local.upload_config(name, {}),
        lambda: local.submit_job(name, GOOD_ID, JOB),
        lambda: local.get_status(name, GOOD_ID),
        lambda: local.get_result(name, GOOD_ID),
        lambda: local.claim_next(name, owner="s"),
        lambda: local.list_ids(Place.QUEUED, name),
        lambda: local.read(Ref(Place.STATUS, GOOD_ID, name)),
        lambda: local.write(Ref(Place.RESULTS, GOOD_ID, name), {}),
        lambda: local.move(Ref(Place.RUNNING, GOOD_ID), Ref(Place.FINISHED, GOOD_ID, name)),
        lambda: local.get_public_key(name + "/.."),
    ]


def calls_with_id(local: LocalProvider, job_id: str) -> list:
    return [
        lambda: local.submit_job("fermions", job_id, JOB),
        lambda: local.get_status("fermions", job_id),
        lambda: local.get_result("fermions", job_id),
        lambda: local.read(Ref(Place.RUNNING, job_id)),
        lambda: local.write(Ref(Place.LEASES, job_id), {}),
        lambda: local.write(Ref(Place.STATUS, job_id, "fermions"), {}),
        lambda: local.delete(Ref(Place.QUEUED, job_id, "fermions")),
        lambda: local.move(Ref(Place.QUEUED, job_id, "fermions"), Ref(Place.RUNNING, job_id)),
    ]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_an_invalid_name_is_refused_before_it_reaches_a_path(local, name):
    before = every_file(local.base_path.parent)

    for call in calls_with_name(local, name):
        with pytest.raises(InvalidName):
            call()

    assert every_file(local.base_path.parent) == before


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_an_invalid_job_id_is_refused_before_it_reaches_a_path(local, job_id):
    before = every_file(local.base_path.parent)

    for call in calls_with_id(local, job_id):
        with pytest.raises(InvalidName):
            call()

    assert every_file(local.base_path.parent) == before


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
