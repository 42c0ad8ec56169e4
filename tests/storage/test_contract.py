"""The storage contract, asserted once for every medium through the provider's own reads.

Submit, status, result, claim, lease, renew, finish, fail, reap, hand back, the crash
limit and the write order of SPEC §7, plus the name and id checks of SPEC §4 that
the base class makes before any medium sees a Ref.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from storage_providers import (
    AlreadyExists,
    InvalidName,
    NotFound,
    Place,
    Ref,
    StorageProvider,
)
from storage_providers.schemas import utcnow
from tests.conftest import FERMIONS_CONFIG

EXPERIMENT = {"instructions": [["load", [0], []]], "num_wires": 8, "shots": 2}
JOB = {"experiment_0": {**EXPERIMENT, "wire_order": "interleaved"}}
RESULT = {"job_id": "x", "status": "INITIALIZING", "results": [], "success": True, "header": {}}
LEASE = 600


def ids_by_age(provider: StorageProvider) -> list[str]:
    """Three well-formed job ids of this medium, oldest first (each medium's ids sort by age)."""
    if provider.is_job_id("65a000000000000000000001"):
        return [f"65a00000000000000000000{n}" for n in (1, 2, 3)]
    return [f"2026010{n}_120000-fermions-alice-0abcd" for n in (1, 2, 3)]


def foreign_ids(provider: StorageProvider) -> list[str]:
    """Ids as the replaced service and sqooler make them on this medium (no time order)."""
    if provider.is_job_id("65a000000000000000000001"):
        return ["f3a9c1e07b2d4c5e9a8b7c6d", "0b1c2d3e4f5a4b6c8d9e0f1a"]  # uuid4().hex[:24]
    return ["20261202_101500-fermions-bob-3f9a1", "20261202_101500-fermions-bob-0c2e7"]


def submit(provider: StorageProvider, job_id: str | None = None, display: str = "fermions") -> str:
    job_id = job_id or provider.new_job_id(display, "alice")
    provider.submit_job(display, job_id, JOB)
    return job_id


def queue(provider: StorageProvider, display: str = "fermions") -> list[str]:
    return sorted(provider.list_ids(Place.QUEUED, display))


def lease_of(provider: StorageProvider, job_id: str) -> dict:
    return provider.read(Ref(Place.LEASES, job_id))


def expire(provider: StorageProvider) -> list[str]:
    return provider.reap_expired(LEASE, now=utcnow() + timedelta(seconds=LEASE + 1))


def status(job_id: str, value: str, detail: str, error: str = "None") -> dict:
    return {"job_id": job_id, "status": value, "detail": detail, "error_message": error}


# ---- configs and keys -----------------------------------------------------------------------


def test_a_config_reads_back_as_stored_and_lists_its_backend(provider):
    assert provider.get_config("fermions") == FERMIONS_CONFIG
    assert provider.list_backends() == ["fermions"]


def test_a_config_rewritten_stays_one_backend(provider):
    provider.upload_config("fermions", {**FERMIONS_CONFIG, "version": "0.2"})

    assert provider.get_config("fermions")["version"] == "0.2"
    assert provider.list_backends() == ["fermions"]


def test_a_signed_config_is_found_by_its_payload_and_unwrapped(provider):
    spins = {**FERMIONS_CONFIG, "display_name": "spins"}
    envelope = {"header": {"alg": "EdDSA", "kid": "k1"}, "payload": spins, "signature": "c2ln"}

    provider.upload_config("spins", spins, signer=lambda doc: envelope)

    assert provider.get_config("spins") == spins
    assert provider.list_backends() == ["fermions", "spins"]


def test_a_last_queue_check_reads_back_as_the_same_utc_instant(provider):
    stamp = utcnow().replace(microsecond=0)
    provider.upload_config("fermions", {**FERMIONS_CONFIG, "last_queue_check": stamp.isoformat()})

    stored = provider.get_config("fermions")["last_queue_check"]

    read = stored if isinstance(stored, datetime) else datetime.fromisoformat(stored)
    assert read == stamp and read.utcoffset() == timedelta(0)


def test_a_missing_config_is_not_found(provider):
    with pytest.raises(NotFound):
        provider.get_config("spins")


def test_a_public_key_reads_back_by_its_key_id(provider):
    jwk = {"kid": "lab-key_1", "kty": "OKP", "crv": "Ed25519", "x": "abc", "d": None}
    provider.upload_public_key(jwk)
    provider.upload_public_key({**jwk, "x": "def"})

    assert provider.get_public_key("lab-key_1") == {**jwk, "x": "def"}
    with pytest.raises(NotFound):
        provider.get_public_key("other")


# ---- the API's side: submit, status, result -------------------------------------------------


def test_submit_writes_the_initial_status_and_queues_the_job(provider):
    job_id = submit(provider)

    assert provider.get_status("fermions", job_id) == status(
        job_id, "INITIALIZING", "Got your json."
    )
    assert queue(provider) == [job_id]
    assert provider.read(Ref(Place.QUEUED, job_id, "fermions")) == JOB


def test_an_existing_status_is_never_overwritten(provider):
    job_id = submit(provider)

    with pytest.raises(AlreadyExists):
        provider.submit_job("fermions", job_id, {"other": EXPERIMENT})
    assert provider.read(Ref(Place.QUEUED, job_id, "fermions")) == JOB


def test_a_withdrawn_job_leaves_nothing_for_a_spooler(provider):
    job_id = submit(provider)

    provider.withdraw_job("fermions", job_id)

    assert queue(provider) == []
    with pytest.raises(NotFound):
        provider.get_status("fermions", job_id)


def test_a_missing_job_has_no_status_and_no_result(provider):
    job_id = provider.new_job_id("fermions", "alice")

    with pytest.raises(NotFound):
        provider.get_status("fermions", job_id)
    with pytest.raises(NotFound):
        provider.get_result("fermions", job_id)


def test_a_status_is_per_backend(provider):
    provider.upload_config("spins", {**FERMIONS_CONFIG, "display_name": "spins"})
    job_id = submit(provider)

    with pytest.raises(NotFound):
        provider.get_status("spins", job_id)


# ---- claiming -------------------------------------------------------------------------------


def test_claim_takes_the_oldest_job_first_whatever_the_order_of_submission(provider):
    oldest, middle, newest = ids_by_age(provider)
    ids = [newest, oldest, middle]
    for job_id in ids:
        submit(provider, job_id)

    claimed = [provider.claim_next("fermions", owner="s1").job_id for _ in ids]

    assert claimed == sorted(ids)
    assert provider.claim_next("fermions", owner="s1") is None


def test_jobs_queued_with_uuid4_based_ids_are_claimed_too(provider):
    """The replaced service and sqooler make ids as `uuid4().hex[:24]`."""
    ids = foreign_ids(provider)
    for job_id in ids:
        submit(provider, job_id)

    claimed = {provider.claim_next("fermions", owner="s1").job_id for _ in ids}

    assert claimed == set(ids)


def test_claim_moves_the_job_to_running_and_leases_it(provider):
    job_id = submit(provider)
    before = utcnow()

    claim = provider.claim_next("fermions", owner="spooler-1", lease_seconds=30)

    assert (claim.job_id, claim.display, claim.job, claim.owner, claim.attempts) == (
        job_id,
        "fermions",
        JOB,
        "spooler-1",
        1,
    )
    assert queue(provider) == []
    assert provider.list_ids(Place.RUNNING) == [job_id]
    assert provider.read(Ref(Place.RUNNING, job_id)) == JOB
    lease = lease_of(provider, job_id)
    assert (lease["display_name"], lease["owner"], lease["attempts"]) == (
        "fermions",
        "spooler-1",
        1,
    )
    assert lease["lease_seconds"] == 30
    assert before <= datetime.fromisoformat(lease["claimed_at"]) <= utcnow()
    assert provider.holds(claim)


def test_claim_writes_no_status(provider):
    job_id = submit(provider)

    provider.claim_next("fermions", owner="s1")

    assert provider.get_status("fermions", job_id)["status"] == "INITIALIZING"


def test_claim_only_looks_at_its_own_backends_queue(provider):
    provider.upload_config("spins", {**FERMIONS_CONFIG, "display_name": "spins"})
    submit(provider, display="spins")

    assert provider.claim_next("fermions", owner="s1") is None
    assert provider.claim_next("spins", owner="s1") is not None


def test_a_job_is_handed_to_one_of_two_claimers_only(make_provider, provider):
    job_id = submit(provider)
    other = make_provider()

    provider.claim("fermions", job_id)

    with pytest.raises(NotFound):
        other.claim("fermions", job_id)
    assert provider.list_ids(Place.RUNNING) == [job_id]
    assert queue(provider) == []


def test_a_job_another_spooler_took_meanwhile_is_skipped(make_provider, provider):
    first, second, _ = ids_by_age(provider)
    submit(provider, first)
    submit(provider, second)
    other = make_provider()
    original = provider.list_ids

    def stale_listing(place, display=""):  # type: ignore[no-untyped-def]
        ids = original(place, display)
        if place is Place.QUEUED:  # another spooler claims the first right after our listing
            other.claim_next("fermions", owner="s2")
        return ids

    provider.list_ids = stale_listing  # type: ignore[method-assign]

    assert provider.claim_next("fermions", owner="s1").job_id == second
    assert lease_of(provider, first)["owner"] == "s2"


def test_a_job_finished_by_one_claimer_is_not_claimed_again_from_a_stale_listing(
    make_provider, provider
):
    """A claimer whose listing predates another's whole claim-run-finish gets nothing."""
    job_id = submit(provider)
    slow = make_provider()
    original = slow.list_ids

    def listing(place, display=""):  # type: ignore[no-untyped-def]
        ids = original(place, display)
        if place is Place.QUEUED and ids:
            fast = provider.claim_next("fermions", owner="fast")
            assert provider.finish(fast, {**RESULT, "job_id": job_id}, "Done.")
        return ids

    slow.list_ids = listing  # type: ignore[method-assign]

    assert slow.claim_next("fermions", owner="slow") is None
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.FINISHED, "fermions") == [job_id]
    assert provider.get_status("fermions", job_id)["status"] == "DONE"


# ---- finishing and failing ------------------------------------------------------------------


@pytest.fixture
def steps(provider) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every write, move and delete the lifecycle makes on `provider`, in order."""
    noted: list[tuple[str, str]] = []
    write, move, delete = provider.write, provider.move, provider.delete

    def noting_write(ref, doc, *, create=False):  # type: ignore[no-untyped-def]
        noted.append(("write", str(ref.place)))
        write(ref, doc, create=create)

    def noting_move(src, dst):  # type: ignore[no-untyped-def]
        noted.append(("move", f"{src.place}->{dst.place}"))
        move(src, dst)

    def noting_delete(ref):  # type: ignore[no-untyped-def]
        noted.append(("delete", str(ref.place)))
        delete(ref)

    provider.write, provider.move, provider.delete = noting_write, noting_move, noting_delete
    return noted


def test_submit_writes_the_status_before_the_queued_job(provider, steps):
    submit(provider)

    assert steps == [("write", "status"), ("write", "queued")]


def test_finish_writes_result_then_finished_then_status_done_then_releases(provider, steps):
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    steps.clear()
    result = {**RESULT, "job_id": job_id}

    assert provider.finish(claim, result, "All went well.") is True

    assert steps == [
        ("write", "results"),
        ("move", "running->finished"),
        ("write", "status"),
        ("delete", "leases"),
    ]
    assert provider.get_result("fermions", job_id) == result
    assert provider.read(Ref(Place.FINISHED, job_id, "fermions")) == JOB
    assert provider.get_status("fermions", job_id) == status(job_id, "DONE", "All went well.")
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.LEASES) == []


def test_fail_moves_the_job_to_deleted_and_writes_error(provider, steps):
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    steps.clear()
    reason = "experiment_0, instruction 0 (load): mode 0 is already occupied"

    assert provider.fail(claim, reason) is True

    assert steps == [("move", "running->deleted"), ("write", "status"), ("delete", "leases")]
    assert provider.read(Ref(Place.DELETED, job_id)) == JOB
    assert provider.get_status("fermions", job_id) == status(job_id, "ERROR", reason, reason)
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.LEASES) == []
    with pytest.raises(NotFound):
        provider.get_result("fermions", job_id)


def test_a_spooler_that_lost_its_lease_writes_nothing(make_provider, provider):
    job_id = submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    expire(provider)
    other = make_provider()
    again = other.claim_next("fermions", owner="s2")

    assert provider.renew(claim) is False
    assert provider.finish(claim, {**RESULT, "job_id": job_id}, "late") is False
    assert provider.fail(claim, "late") is False
    assert provider.get_status("fermions", job_id)["status"] == "INITIALIZING"
    with pytest.raises(NotFound):
        provider.get_result("fermions", job_id)
    assert other.holds(again)
    assert provider.list_ids(Place.RUNNING) == [job_id]


# ---- leases running out ---------------------------------------------------------------------


def test_a_live_lease_is_left_alone(provider):
    submit(provider)
    provider.claim_next("fermions", owner="s1")

    assert provider.reap_expired(LEASE, now=utcnow() + timedelta(seconds=LEASE - 5)) == []
    assert provider.list_ids(Place.RUNNING) != []


def test_a_renewed_lease_runs_from_its_renewal(provider, monkeypatch):
    submit(provider)
    claim = provider.claim_next("fermions", owner="s1")
    later = utcnow() + timedelta(seconds=LEASE - 10)
    monkeypatch.setattr("storage_providers.base.utcnow", lambda: later)

    assert provider.renew(claim)
    assert provider.reap_expired(LEASE, now=later + timedelta(seconds=LEASE - 10)) == []


def test_a_lease_of_its_own_length_outlives_a_shorter_reaper(provider):
    submit(provider)
    provider.claim_next("fermions", owner="s1", lease_seconds=2 * LEASE)

    assert expire(provider) == []


def test_an_expired_job_goes_back_to_its_queue_under_its_own_id(provider):
    job_id, _, newer = ids_by_age(provider)
    submit(provider, job_id)
    provider.claim_next("fermions", owner="s1")
    submit(provider, newer)

    assert expire(provider) == [job_id]

    assert queue(provider) == sorted([job_id, newer])
    assert provider.read(Ref(Place.QUEUED, job_id, "fermions")) == JOB
    assert provider.list_ids(Place.RUNNING) == []
    lease = lease_of(provider, job_id)
    assert [lease[k] for k in ("display_name", "claimed_at", "owner", "attempts")] == [
        "fermions",
        None,
        None,
        1,
    ]
    # it keeps its place: the next claim takes it before the newer job
    assert provider.claim_next("fermions", owner="s2").job_id == job_id


def test_a_job_whose_lease_ran_out_three_times_crashed_the_spooler(provider):
    job_id = submit(provider)
    attempts = []
    for _ in range(2):
        attempts.append(provider.claim_next("fermions", owner="s").attempts)
        assert expire(provider) == [job_id]
        assert queue(provider) == [job_id]
    attempts.append(provider.claim_next("fermions", owner="s").attempts)

    assert expire(provider) == [job_id]

    assert attempts == [1, 2, 3]
    assert queue(provider) == []
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.read(Ref(Place.DELETED, job_id)) == JOB
    crashed = "The job crashed the spooler."
    assert provider.get_status("fermions", job_id) == status(job_id, "ERROR", crashed, crashed)
    assert provider.list_ids(Place.LEASES) == []


def test_a_running_job_without_a_lease_gets_one_and_then_runs_out(provider):
    """Its claimer died between the claim and the lease: the clock starts when it is found."""
    job_id = submit(provider)
    provider.claim("fermions", job_id)
    found = utcnow()

    assert provider.reap_expired(LEASE, now=found) == []
    lease = lease_of(provider, job_id)
    assert (lease["display_name"], lease["owner"], lease["attempts"]) == ("fermions", "", 1)

    assert provider.reap_expired(LEASE, now=found + timedelta(seconds=LEASE + 1)) == [job_id]
    assert queue(provider) == [job_id]


def test_a_job_left_in_both_queue_and_running_is_repaired_and_runs_once(make_provider, provider):
    """A claimer that died between its copy into `running` and its delete from the queue."""
    job_id = submit(provider)
    provider.write(Ref(Place.RUNNING, job_id), JOB)  # the copy made, the delete never done
    spooler = make_provider()
    runs = []
    found = utcnow()

    for round_ in range(4):  # spooler and reaper take turns, a lease period apart
        claim = spooler.claim_next("fermions", owner="s2")
        if claim is not None:
            runs.append(claim.job_id)
            assert spooler.finish(claim, {**RESULT, "job_id": job_id}, "Done.")
        provider.reap_expired(LEASE, now=found + round_ * timedelta(seconds=LEASE + 1))

    assert runs == [job_id]
    assert queue(provider) == []
    assert provider.list_ids(Place.RUNNING) == []
    assert provider.list_ids(Place.FINISHED, "fermions") == [job_id]
    assert provider.get_status("fermions", job_id)["status"] == "DONE"


def test_a_damaged_lease_is_rebuilt_instead_of_blocking_its_job(provider):
    job_id = submit(provider)
    provider.claim_next("fermions", owner="s1")
    provider.write(Ref(Place.LEASES, job_id), {"owner": 5})

    found = utcnow()
    provider.reap_expired(LEASE, now=found)
    assert provider.reap_expired(LEASE, now=found + timedelta(seconds=LEASE + 1)) == [job_id]
    assert queue(provider) == [job_id]


# ---- names and ids are checked before any medium sees them ----------------------------------

BAD_NAMES = ["../x", "..", "", "Fermions", "a b", "a/b", "a\x00b", "fermions.json", "a_b", "$ne"]
BAD_IDS = [
    "../../backends/configs/fermions",
    "",
    "abc",
    "0123456789ABCDEF01234567",
    "0123456789abcdef0123456/",
    "0123456789abcdef0123456\x00",
    "0123456789abcdef012345678",
    "/etc/passwd",
    '{"$gt": ""}',
]


def calls_with_name(provider: StorageProvider, name: str) -> list[Callable[[], object]]:
    GOOD_ID = provider.new_job_id("fermions", "alice")  # noqa: N806 - a constant per medium
    return [
        lambda: provider.get_config(name),
        lambda: provider.upload_config(name, {}),
        lambda: provider.submit_job(name, GOOD_ID, JOB),
        lambda: provider.get_status(name, GOOD_ID),
        lambda: provider.get_result(name, GOOD_ID),
        lambda: provider.claim_next(name, owner="s"),
        lambda: provider.claim(name, GOOD_ID),
        lambda: provider.list_ids(Place.QUEUED, name),
        lambda: provider.read(Ref(Place.STATUS, GOOD_ID, name)),
        lambda: provider.write(Ref(Place.RESULTS, GOOD_ID, name), {}),
        lambda: provider.write(Ref(Place.RESULTS, GOOD_ID, "fermions", username=name + "/"), {}),
        lambda: provider.move(Ref(Place.RUNNING, GOOD_ID), Ref(Place.FINISHED, GOOD_ID, name)),
        lambda: provider.get_public_key(name + "/.."),
    ]


def calls_with_id(provider: StorageProvider, job_id: str) -> list[Callable[[], object]]:
    return [
        lambda: provider.submit_job("fermions", job_id, JOB),
        lambda: provider.get_status("fermions", job_id),
        lambda: provider.get_result("fermions", job_id),
        lambda: provider.claim("fermions", job_id),
        lambda: provider.read(Ref(Place.RUNNING, job_id)),
        lambda: provider.write(Ref(Place.LEASES, job_id), {}),
        lambda: provider.write(Ref(Place.STATUS, job_id, "fermions"), {}),
        lambda: provider.delete(Ref(Place.QUEUED, job_id, "fermions")),
        lambda: provider.move(Ref(Place.QUEUED, job_id, "fermions"), Ref(Place.RUNNING, job_id)),
    ]


def untouched(provider: StorageProvider) -> Callable[[], None]:
    """A check that the storage holds exactly what it held when this was called."""

    def snapshot() -> dict[str, list[str]]:
        places = {str(p): sorted(provider.list_ids(p)) for p in (Place.RUNNING, Place.LEASES)}
        places["queued"] = sorted(provider.list_ids(Place.QUEUED, "fermions"))
        places["backends"] = provider.list_backends()
        return places

    before = snapshot()
    return lambda: None if snapshot() == before else pytest.fail("storage changed")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_an_invalid_name_is_refused_before_it_reaches_storage(provider, name):
    check = untouched(provider)
    for call in calls_with_name(provider, name):
        with pytest.raises(InvalidName):
            call()
    check()


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_an_invalid_job_id_is_refused_before_it_reaches_storage(provider, job_id):
    check = untouched(provider)
    for call in calls_with_id(provider, job_id):
        with pytest.raises(InvalidName):
            call()
    check()


def test_a_medium_never_sees_a_ref_the_base_refused(provider, monkeypatch):
    seen: list[str] = []
    for primitive in ("_read", "_write", "_move", "_delete", "_list_ids", "_claim"):
        monkeypatch.setattr(provider, primitive, lambda *a, p=primitive, **k: seen.append(p))

    for name in BAD_NAMES:
        for call in calls_with_name(provider, name):
            with pytest.raises(InvalidName):
                call()

    assert seen == []
