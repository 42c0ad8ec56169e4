"""post_job, get_job_status and get_job_result on both mounts: every row of SPEC §4's table."""

from __future__ import annotations

import copy
import json
import re

import pytest
from django.contrib.auth import get_user_model

from backends.auth import issue_token
from backends.models import Job, StorageProviderDb, Token, UserQuota
from storage_providers import LocalProvider, Place, Ref
from tests.conftest import FERMIONS_CONFIG, every_medium

pytest_generate_tests = every_medium

V2 = "/api/v2"
QISKIT = "/api/qiskit-cold-atom"
BACKEND = "alqor_fermions_simulator"
UNKNOWN = "Unknown back-end!"
BAD_TOKEN = "Invalid credentials!"
NO_STATUS = "Could not find the status file."
NOT_YET = "The job is done, but its result is not written yet. Try again in a moment."
WRITE_FAILED = "The job could not be written to storage. Try again later."
A_MISSING_ID = "0123456789abcdef01234567"

EXPERIMENT = {
    "instructions": [["load", [0], []], ["fhop", [0, 1, 2, 3], [1.5]], ["measure", [0], []]],
    "num_wires": 8,
    "shots": 3,
    "wire_order": "interleaved",
}
JOB = {"experiment_0": EXPERIMENT}
MEMORY = ["0 0 1 0 0 0 0 0", "0 0 1 0 0 0 0 0", "1 0 0 0 0 0 0 0"]


def error(detail: str, job_id: str = "None") -> dict:
    return {"job_id": job_id, "status": "ERROR", "detail": detail, "error_message": detail}


def missing(name: str) -> dict:
    return error(f"Missing or invalid parameter: {name}.")


def status(job_id: str, value: str, detail: str, error_message: str = "None") -> dict:
    return {"job_id": job_id, "status": value, "detail": detail, "error_message": error_message}


def sqooler_result(job_id: str, **changes: object) -> dict:
    """A result as sqooler 0.9.0 writes it: no counts, its own status word."""
    return {
        "backend_name": "fermions",
        "display_name": "fermions",
        "backend_version": "0.1",
        "job_id": job_id,
        "qobj_id": None,
        "success": True,
        "status": "INITIALIZING",
        "header": {},
        "results": [
            {
                "header": {"name": "experiment_0", "extra metadata": "text"},
                "shots": 3,
                "success": True,
                "data": {"memory": list(MEMORY), "instructions": EXPERIMENT["instructions"]},
            }
        ],
        **changes,
    }


def envelope(payload: dict) -> dict:
    """A signed document as sqooler stores it; the API reads its payload."""
    return {
        "header": {"alg": "EdDSA", "kid": "key1", "typ": "JWS", "version": "0.1"},
        "payload": payload,
        "signature": "c2lnbmF0dXJlIGJ5dGVz",
    }


# ---- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def bob_token(db) -> str:
    bob = get_user_model().objects.create_user("bob", password=None)
    return issue_token(bob)[1]


@pytest.fixture
def api(client, storage, token):  # type: ignore[no-untyped-def]
    """A client for the three job endpoints, posting as alice unless told otherwise."""

    class Api:
        def post(self, job=JOB, *, backend=BACKEND, mount=V2, headers=None, **body):  # type: ignore[no-untyped-def]
            body.setdefault("token", token)
            if job is not None:
                body["job"] = job if isinstance(job, str) else json.dumps(job)
            body = {k: v for k, v in body.items() if v is not None}
            return client.post(
                f"{mount}/{backend}/post_job",
                body,
                content_type="application/json",
                headers=headers or {},
            )

        def post_id(self, job=JOB, **kwargs) -> str:  # type: ignore[no-untyped-def]
            response = self.post(job, **kwargs)
            assert response.status_code == 200, response.content
            return response.json()["job_id"]

        def get(self, endpoint, job_id=None, *, backend=BACKEND, mount=V2, headers=None, **q):  # type: ignore[no-untyped-def]
            q.setdefault("token", token)
            if job_id is not None:
                q["job_id"] = job_id
            q = {k: v for k, v in q.items() if v is not None}
            return client.get(f"{mount}/{backend}/{endpoint}", q, headers=headers or {})

        def status(self, job_id=None, **kwargs):  # type: ignore[no-untyped-def]
            return self.get("get_job_status", job_id, **kwargs)

        def result(self, job_id=None, **kwargs):  # type: ignore[no-untyped-def]
            return self.get("get_job_result", job_id, **kwargs)

    return Api()


def set_status(storage: LocalProvider, job_id: str, doc: dict, display: str = "fermions") -> None:
    storage.write(Ref(Place.STATUS, job_id, display), doc)


def set_result(storage: LocalProvider, job_id: str, doc: dict, display: str = "fermions") -> None:
    storage.write(Ref(Place.RESULTS, job_id, display), doc)


def run_to_done(storage: LocalProvider, result: dict | None = None) -> str:
    """Let a spooler claim the oldest job and finish it; the job id."""
    claim = storage.claim_next("fermions", owner="test-spooler")
    assert claim is not None
    storage.finish(claim, result or sqooler_result(claim.job_id), "All went well.")
    return claim.job_id


def run_to_error(storage: LocalProvider, reason: str) -> str:
    claim = storage.claim_next("fermions", owner="test-spooler")
    assert claim is not None
    storage.fail(claim, reason)
    return claim.job_id


def answer(response) -> tuple[int, object]:  # type: ignore[no-untyped-def]
    assert response["Content-Type"].startswith("application/json")
    return response.status_code, response.json()


# ---- post_job -------------------------------------------------------------------------------


@pytest.mark.object_ids
def test_post_job_answers_the_initial_status_with_a_fresh_job_id(api):
    code, body = answer(api.post())

    assert code == 200
    assert re.fullmatch(r"[0-9a-f]{24}", body["job_id"])
    assert body == status(body["job_id"], "INITIALIZING", "Got your json.")


def test_post_job_answers_a_different_id_each_time(api):
    ids = {api.post_id() for _ in range(5)}

    assert len(ids) == 5


def test_post_job_stores_the_job_and_its_status_where_spoolers_look(api, storage, storage_path):
    job_id = api.post_id()

    queued = json.loads((storage_path / f"jobs/queued/fermions/{job_id}.json").read_text())
    stored = json.loads((storage_path / f"status/fermions/{job_id}.json").read_text())
    assert queued == JOB
    assert stored == status(job_id, "INITIALIZING", "Got your json.")


def test_post_job_fills_in_the_backends_wire_order_when_missing(api, storage, storage_path):
    bare = {k: v for k, v in EXPERIMENT.items() if k != "wire_order"}
    job = {"experiment_0": bare, "experiment_1": {**bare, "wire_order": "sequential"}}

    job_id = api.post_id(job)

    queued = json.loads((storage_path / f"jobs/queued/fermions/{job_id}.json").read_text())
    assert queued == {
        "experiment_0": {**bare, "wire_order": "interleaved"},
        "experiment_1": {**bare, "wire_order": "sequential"},
    }


def test_post_job_keeps_the_optional_seed_and_unknown_experiment_keys(api, storage_path):
    job = {"experiment_0": {**EXPERIMENT, "seed": 17, "header": {"name": "x"}}}

    job_id = api.post_id(job)

    queued = json.loads((storage_path / f"jobs/queued/fermions/{job_id}.json").read_text())
    assert queued == job


def test_post_job_ignores_extra_body_fields_such_as_username(api):
    code, body = answer(api.post(username="somebody-else", shots=5, extra={"a": 1}))

    assert code == 200
    assert body == status(body["job_id"], "INITIALIZING", "Got your json.")


def test_post_job_records_the_job_in_the_ledger(api, user, local_provider):
    job_id = api.post_id()

    row = Job.objects.get()
    assert (row.job_id, row.storage_provider_id, row.display_name, row.owner_id) == (
        job_id,
        local_provider.pk,
        "fermions",
        user.pk,
    )


def test_post_job_accepts_a_bearer_header_instead_of_the_token_field(client, storage, token):
    response = client.post(
        f"{V2}/{BACKEND}/post_job",
        {"job": json.dumps(JOB)},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    code, body = answer(response)
    assert code == 200
    assert body == status(body["job_id"], "INITIALIZING", "Got your json.")


def test_post_job_with_a_one_part_backend_name_uses_the_default_storage(api, storage_path):
    job_id = api.post_id(backend="fermions")

    assert (storage_path / f"jobs/queued/fermions/{job_id}.json").exists()


@pytest.mark.parametrize(
    ("job", "detail"),
    [
        ("not json", "The job is not valid JSON."),
        ("", "The job is not valid JSON."),
        ("{'experiment_0': {}}", "The job is not valid JSON."),
        ("[" * 50_000 + "]" * 50_000, "The job is not valid JSON."),
        ("[1, 2]", "The job must be a non-empty JSON object of experiments."),
        ('"a string"', "The job must be a non-empty JSON object of experiments."),
        ("null", "The job must be a non-empty JSON object of experiments."),
        ("{}", "The job must be a non-empty JSON object of experiments."),
        ({"experiment_0": 5}, "Invalid job: experiment_0 has an invalid shape."),
        ({"experiment_0": [1]}, "Invalid job: experiment_0 has an invalid shape."),
        (
            {"experiment_0": EXPERIMENT, "experiment_1": {**EXPERIMENT, "shots": "3"}},
            "Invalid job: experiment_1 has an invalid key 'shots'.",
        ),
        (
            {"experiment_0": {**EXPERIMENT, "shots": True}},
            "Invalid job: experiment_0 has an invalid key 'shots'.",
        ),
        (
            {"experiment_0": {k: v for k, v in EXPERIMENT.items() if k != "shots"}},
            "Invalid job: experiment_0 has an invalid key 'shots'.",
        ),
        (
            {"experiment_0": {k: v for k, v in EXPERIMENT.items() if k != "num_wires"}},
            "Invalid job: experiment_0 has an invalid key 'num_wires'.",
        ),
        (
            {"experiment_0": {**EXPERIMENT, "num_wires": 8.5}},
            "Invalid job: experiment_0 has an invalid key 'num_wires'.",
        ),
        (
            {"experiment_0": {k: v for k, v in EXPERIMENT.items() if k != "instructions"}},
            "Invalid job: experiment_0 has an invalid key 'instructions'.",
        ),
        (
            {"experiment_0": {**EXPERIMENT, "instructions": "load"}},
            "Invalid job: experiment_0 has an invalid key 'instructions'.",
        ),
        (
            {"experiment_0": {**EXPERIMENT, "instructions": [5]}},
            "Invalid job: experiment_0 has an invalid key 'instructions'.",
        ),
        (
            {"experiment_0": {**EXPERIMENT, "wire_order": "diagonal"}},
            "Invalid job: experiment_0 has an invalid key 'wire_order'.",
        ),
        (
            {"experiment_0": {**EXPERIMENT, "seed": "7"}},
            "Invalid job: experiment_0 has an invalid key 'seed'.",
        ),
    ],
)
def test_post_job_refuses_a_job_of_the_wrong_shape_with_406(api, storage_path, job, detail):
    assert answer(api.post(job)) == (406, error(detail))
    assert not Job.objects.exists()
    assert not (storage_path / "jobs/queued/fermions").exists()


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({}, "job"),
        ({"token": "x"}, "job"),
        ({"job": None}, "job"),
        ({"job": 5}, "job"),
        ({"job": JOB}, "job"),
        ({"job": json.dumps(JOB), "token": None}, "token"),
        ({"job": json.dumps(JOB), "token": ""}, "token"),
        ({"job": json.dumps(JOB), "token": 5}, "token"),
        ({"job": json.dumps(JOB), "token": ["x"]}, "token"),
    ],
)
def test_post_job_names_a_missing_or_malformed_parameter_with_422(client, storage, body, name):
    response = client.post(f"{V2}/{BACKEND}/post_job", body, content_type="application/json")

    assert answer(response) == (422, missing(name))


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("not json", "application/json"),
        ("", "application/json"),
        ("[1]", "application/json"),
        ("null", "application/json"),
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        ("job=x&token=y", "application/x-www-form-urlencoded"),
    ],
)
def test_post_job_with_a_body_that_is_not_a_json_object_is_422(client, storage, raw, content_type):
    response = client.generic("POST", f"{V2}/{BACKEND}/post_job", raw, content_type=content_type)

    code, body = answer(response)
    assert code == 422
    assert body in (missing("body"), missing("job"))


def test_post_job_over_max_request_bytes_is_413_and_stores_nothing(api, settings, storage_path):
    settings.MAX_REQUEST_BYTES = 2_000
    big = {"experiment_0": {**EXPERIMENT, "instructions": [["measure", [0], []]] * 200}}

    assert answer(api.post(big)) == (413, error("Request too large."))
    assert not Job.objects.exists()
    assert not (storage_path / "status").exists()


def test_post_job_just_under_max_request_bytes_is_accepted(api, settings):
    settings.MAX_REQUEST_BYTES = 2_000

    assert api.post().status_code == 200


BAD_CREDENTIALS = ["wrong", "too long", "inactive token", "inactive user", "wrong bearer"]


def spoil(credentials: str, user) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """Make alice's credentials bad in one way: (what the token field says, headers)."""
    if credentials == "inactive token":
        Token.objects.update(is_active=False)
    elif credentials == "inactive user":
        user.is_active = False
        user.save()
    elif credentials == "wrong bearer":
        return {"token": None}, {"Authorization": "Bearer not-a-token"}
    else:
        return {"token": "not-a-token" if credentials == "wrong" else "x" * 600}, {}
    return {}, {}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
def test_post_job_refuses_bad_credentials_with_401(api, user, credentials):
    given, headers = spoil(credentials, user)

    assert answer(api.post(headers=headers, **given)) == (401, error(BAD_TOKEN))
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "backend",
    ["alqor_nothing_simulator", "alqor_fermions_hardware", "other_fermions_simulator", "al..qor"],
)
def test_post_job_to_an_unknown_backend_is_404(api, backend):
    assert answer(api.post(backend=backend)) == (404, error(UNKNOWN))
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("body", "backend", "expected"),
    [
        # 422 before 401 before 404 before 406
        ({"token": "wrong"}, "alqor_nothing_simulator", (422, missing("job"))),
        ({"job": "not json"}, "alqor_nothing_simulator", (422, missing("token"))),
        ({"job": "not json", "token": "wrong"}, "alqor_nothing_simulator", (401, error(BAD_TOKEN))),
        ({"job": "not json", "token": "wrong"}, BACKEND, (401, error(BAD_TOKEN))),
        ({"job": "not json", "token": "<token>"}, "alqor_nothing_simulator", (404, error(UNKNOWN))),
        (
            {"job": "not json", "token": "<token>"},
            BACKEND,
            (406, error("The job is not valid JSON.")),
        ),
    ],
)
def test_post_job_answers_the_first_failing_check_in_spec_order(
    client, storage, token, body, backend, expected
):
    if body.get("token") == "<token>":
        body = {**body, "token": token}

    response = client.post(f"{V2}/{backend}/post_job", body, content_type="application/json")

    assert answer(response) == expected


@pytest.mark.parametrize("blocked", ["status/fermions", "jobs/queued/fermions"])
def test_post_job_whose_storage_write_fails_is_406_and_leaves_no_trace(api, storage_path, blocked):
    """A file where a folder should be makes the write fail (root ignores read-only modes)."""
    target = storage_path / blocked
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("in the way")

    assert answer(api.post()) == (406, error(WRITE_FAILED))
    assert not Job.objects.exists()
    leftovers = [p for p in storage_path.rglob("*.json") if "backends" not in p.parts]
    assert leftovers == []


def test_post_job_works_again_once_storage_recovers(api, storage_path):
    target = storage_path / "jobs/queued/fermions"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("in the way")
    assert api.post().status_code == 406

    target.unlink()
    job_id = api.post_id()

    assert (storage_path / f"jobs/queued/fermions/{job_id}.json").exists()
    assert list(Job.objects.values_list("job_id", flat=True)) == [job_id]


def test_post_job_to_a_provider_whose_folder_is_a_file_is_a_clean_error(
    client, user, token, tmp_path
):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    StorageProviderDb.objects.create(
        name="alqor", storage_type="local", owner=user, login={"base_path": str(blocker)}
    )

    response = client.post(
        f"{V2}/{BACKEND}/post_job",
        {"job": json.dumps(JOB), "token": token},
        content_type="application/json",
    )

    # The config cannot be read, so the backend's storage is unreachable (SPEC §4, 503).
    detail = "The storage provider is not reachable right now. Try again later."
    assert answer(response) == (503, error(detail))
    assert not Job.objects.exists()


@pytest.mark.parametrize("endpoint", ["post_job", "get_job_status", "get_job_result"])
def test_a_provider_of_a_type_this_build_lacks_is_503_on_job_endpoints(
    api, user, endpoint, dropbox_not_built
):
    login = {"app_key": "k", "app_secret": "s", "refresh_token": "r"}
    StorageProviderDb.objects.create(name="box", storage_type="dropbox", owner=user, login=login)
    backend = "box_fermions_simulator"

    if endpoint == "post_job":
        response = api.post(backend=backend)
    else:
        response = api.get(endpoint, A_MISSING_ID, backend=backend)

    assert answer(response) == (503, error("Storage type dropbox is not available."))
    assert not Job.objects.exists()


# ---- get_job_status -------------------------------------------------------------------------


def test_get_job_status_answers_the_stored_status(api):
    job_id = api.post_id()

    assert answer(api.status(job_id)) == (
        200,
        status(job_id, "INITIALIZING", "Got your json."),
    )


@pytest.mark.parametrize(
    "stored",
    [
        {"status": "QUEUED", "detail": "In line.", "error_message": "None"},
        {"status": "DONE", "detail": "All went well.", "error_message": "None"},
        {"status": "INITIALIZING", "detail": "Got your json.", "error_message": "None"},
    ],
)
def test_get_job_status_answers_every_non_error_status_with_200(api, storage, stored):
    job_id = api.post_id()
    set_status(storage, job_id, {"job_id": job_id, **stored})

    assert answer(api.status(job_id)) == (200, {"job_id": job_id, **stored})


def test_get_job_status_reads_a_signed_status_from_its_payload(api, storage):
    job_id = api.post_id()
    set_status(storage, job_id, envelope(status(job_id, "QUEUED", "In line.")))

    assert answer(api.status(job_id)) == (200, status(job_id, "QUEUED", "In line."))


def test_get_job_status_of_a_failed_job_is_406_with_the_stored_status(api, storage):
    job_id = api.post_id()
    reason = "experiment_0, instruction 0 (load): mode 0 is already occupied"
    run_to_error(storage, reason)

    assert answer(api.status(job_id)) == (406, status(job_id, "ERROR", reason, reason))


def test_get_job_status_accepts_a_bearer_header(api, token):
    job_id = api.post_id()

    response = api.status(job_id, token=None, headers={"Authorization": f"Bearer {token}"})

    assert answer(response) == (200, status(job_id, "INITIALIZING", "Got your json."))


def test_get_job_status_ignores_the_username_parameter_of_the_qiskit_client(api):
    job_id = api.post_id()

    response = api.status(job_id, username="whoever")

    assert answer(response) == (200, status(job_id, "INITIALIZING", "Got your json."))


# ---- errors both job endpoints share --------------------------------------------------------


JOB_ENDPOINTS = ["get_job_status", "get_job_result"]


@pytest.mark.object_ids
@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
@pytest.mark.parametrize(
    ("job_id", "answered_id"),
    [
        (A_MISSING_ID, A_MISSING_ID),
        ("None", "None"),
        ("abc", "None"),
        ("0123456789ABCDEF01234567", "None"),
        ("0123456789abcdef012345678", "None"),
        ("../../backends/configs/fermions", "None"),
        ("0123456789abcdef0123456\x00", "None"),
        ("", "None"),
    ],
)
def test_a_job_that_does_not_exist_is_406_could_not_find_the_status_file(
    api, endpoint, job_id, answered_id
):
    api.post_id()

    assert answer(api.get(endpoint, job_id)) == (406, error(NO_STATUS, answered_id))


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
def test_another_users_job_answers_exactly_like_a_missing_one(api, bob_token, endpoint):
    job_id = api.post_id()

    response = api.get(endpoint, job_id, token=bob_token)

    assert answer(response) == (406, error(NO_STATUS, job_id))


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
def test_a_job_asked_for_on_another_backend_answers_like_a_missing_one(
    api, storage, provider_copy, endpoint
):
    storage.upload_config("spins", {**copy.deepcopy(FERMIONS_CONFIG), "display_name": "spins"})
    job_id = api.post_id()

    on_other_display = api.get(endpoint, job_id, backend="alqor_spins_simulator")
    on_other_provider = api.get(endpoint, job_id, backend="copy_fermions_simulator")

    assert answer(on_other_display) == (406, error(NO_STATUS, job_id))
    assert answer(on_other_provider) == (406, error(NO_STATUS, job_id))


@pytest.fixture
def provider_copy(user, storage_path):  # type: ignore[no-untyped-def]
    """A second provider `copy` over the very same folder: same files, another ledger key."""
    return StorageProviderDb.objects.create(
        name="copy", storage_type="local", owner=user, login={"base_path": str(storage_path)}
    )


@pytest.mark.object_ids
@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
def test_a_job_in_storage_but_not_in_the_ledger_is_nobodys(api, storage, endpoint):
    """Jobs posted before the switch from the replaced system are in no ledger."""
    legacy = "65a000000000000000000001"
    storage.submit_job("fermions", legacy, JOB)

    assert answer(api.get(endpoint, legacy)) == (406, error(NO_STATUS, legacy))


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
def test_a_ledger_job_whose_status_file_is_gone_is_406(api, storage_path, endpoint):
    job_id = api.post_id()
    (storage_path / f"status/fermions/{job_id}.json").unlink()

    assert answer(api.get(endpoint, job_id)) == (406, error(NO_STATUS, job_id))


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
def test_job_endpoints_refuse_bad_credentials_with_401(api, user, endpoint, credentials):
    job_id = api.post_id()
    given, headers = spoil(credentials, user)

    response = api.get(endpoint, job_id, headers=headers, **given)

    assert answer(response) == (401, error(BAD_TOKEN))


@pytest.fixture
def clock(monkeypatch, settings):  # type: ignore[no-untyped-def]
    """Caches on (CACHE_SECONDS 2) with a clock the test moves."""
    settings.CACHE_SECONDS = 2
    now = [1000.0]
    monkeypatch.setattr("backends.cache.time.monotonic", lambda: now[0])
    return now


def test_a_deactivated_token_is_refused_within_cache_seconds(api, clock):
    job_id = api.post_id()
    Token.objects.update(is_active=False)
    clock[0] += 1.9
    cached = api.status(job_id).status_code
    clock[0] += 0.2

    assert (cached, answer(api.status(job_id))) == (200, (401, error(BAD_TOKEN)))


def test_a_deactivated_provider_is_unknown_within_cache_seconds(api, clock, local_provider):
    job_id = api.post_id()
    StorageProviderDb.objects.filter(pk=local_provider.pk).update(is_active=False)
    clock[0] += 1.9
    cached = api.status(job_id).status_code
    clock[0] += 0.2

    assert (cached, answer(api.status(job_id))) == (200, (404, error(UNKNOWN)))


def test_a_quota_set_in_the_admin_applies_within_cache_seconds(api, clock, settings, user):
    settings.QUOTA_QUEUED_JOBS = 0  # no limit, and none of the user's own yet
    api.post_id()
    UserQuota.objects.create(user=user, max_queued_jobs=1)
    clock[0] += 1.9
    cached = api.post().status_code
    clock[0] += 0.2

    assert (cached, api.post().status_code) == (200, 429)


def test_an_edited_config_is_served_within_cache_seconds(client, storage, clock):
    def description() -> str:
        return client.get(f"{V2}/{BACKEND}/get_config").json()["description"]

    before = description()
    storage.write(Ref(Place.CONFIGS, "fermions"), {**FERMIONS_CONFIG, "description": "Edited."})
    clock[0] += 1.9
    cached = description()
    clock[0] += 0.2

    assert (before, cached, description()) == (FERMIONS_CONFIG["description"], before, "Edited.")


def test_a_backend_first_named_late_is_unknown_once_its_provider_entry_runs_out(
    client, storage, clock, local_provider
):
    """A resolved name is remembered no longer than the provider entry it was made from."""
    storage.upload_config("lattice", {**copy.deepcopy(FERMIONS_CONFIG), "display_name": "lattice"})

    def served(name: str) -> int:
        return client.get(f"{V2}/{name}/get_backend_status").status_code

    first = served(BACKEND)  # the provider's entry is read now
    clock[0] += 1.5
    late = served("alqor_lattice_simulator")  # its config is read now, the entry is not
    StorageProviderDb.objects.filter(pk=local_provider.pk).update(is_active=False)
    clock[0] += 0.6  # past the entry's CACHE_SECONDS, within the config's

    assert (first, late, served("alqor_lattice_simulator")) == (200, 200, 404)


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
def test_a_deactivated_token_is_refused_at_once_with_caches_off(api, endpoint):
    job_id = api.post_id()
    assert api.get(endpoint, job_id).status_code == 200

    Token.objects.update(is_active=False)

    assert answer(api.get(endpoint, job_id)) == (401, error(BAD_TOKEN))


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
@pytest.mark.parametrize(
    "backend", ["alqor_nothing_simulator", "alqor_fermions_hardware", "nobody_fermions_simulator"]
)
def test_job_endpoints_on_an_unknown_backend_are_404(api, endpoint, backend):
    job_id = api.post_id()

    assert answer(api.get(endpoint, job_id, backend=backend)) == (404, error(UNKNOWN))


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # 422 before 401 before 404 before 406
        ({"token": "wrong"}, (422, missing("job_id"))),
        ({"job_id": "abc", "token": None}, (422, missing("token"))),
        ({"job_id": "abc", "token": "wrong"}, (401, error(BAD_TOKEN))),
        ({"job_id": "abc"}, (404, error(UNKNOWN))),
    ],
)
def test_job_endpoints_answer_the_first_failing_check_in_spec_order(api, endpoint, query, expected):
    response = api.get(endpoint, backend="alqor_nothing_simulator", **query)

    assert answer(response) == expected


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS)
def test_job_endpoints_with_a_good_backend_and_a_bad_id_are_406(api, endpoint):
    assert answer(api.get(endpoint, "abc")) == (406, error(NO_STATUS))


# ---- get_job_result -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        {"status": "INITIALIZING", "detail": "Got your json.", "error_message": "None"},
        {"status": "QUEUED", "detail": "Waiting in the queue.", "error_message": "None"},
    ],
)
def test_get_job_result_answers_the_status_while_the_job_waits(api, storage, stored):
    job_id = api.post_id()
    set_status(storage, job_id, {"job_id": job_id, **stored})

    assert answer(api.result(job_id)) == (200, {"job_id": job_id, **stored})


def test_get_job_result_of_a_done_job_without_result_says_try_again(api, storage):
    job_id = api.post_id()
    set_status(storage, job_id, status(job_id, "DONE", "All went well."))

    assert answer(api.result(job_id)) == (200, status(job_id, "DONE", NOT_YET))


def test_get_job_result_of_a_done_job_answers_the_result_as_done(api, storage):
    job_id = api.post_id()
    run_to_done(storage)

    expected = {**sqooler_result(job_id), "backend_name": BACKEND, "status": "DONE"}
    assert answer(api.result(job_id)) == (200, expected)


def test_get_job_result_always_carries_qobj_id(api, storage):
    job_id = api.post_id()
    result = sqooler_result(job_id)
    del result["qobj_id"]
    run_to_done(storage, result)

    expected = {**result, "qobj_id": None, "backend_name": BACKEND, "status": "DONE"}
    assert answer(api.result(job_id)) == (200, expected)


def test_get_job_result_reads_a_signed_result_and_status_from_their_payloads(api, storage):
    job_id = api.post_id()
    set_status(storage, job_id, envelope(status(job_id, "DONE", "All went well.")))
    set_result(storage, job_id, envelope(sqooler_result(job_id, qobj_id="q1")))

    expected = {**sqooler_result(job_id, qobj_id="q1"), "backend_name": BACKEND, "status": "DONE"}
    assert answer(api.result(job_id)) == (200, expected)


def test_get_job_result_trusts_the_status_document_not_the_results_status(api, storage):
    """sqooler writes `status: INITIALIZING` inside results; only the status file counts."""
    job_id = api.post_id()
    set_result(storage, job_id, sqooler_result(job_id, status="DONE"))

    assert answer(api.result(job_id)) == (200, status(job_id, "INITIALIZING", "Got your json."))


def test_get_job_result_of_a_failed_job_is_406_with_the_stored_status(api, storage):
    job_id = api.post_id()
    run_to_error(storage, "The job crashed the spooler.")

    reason = "The job crashed the spooler."
    assert answer(api.result(job_id)) == (406, status(job_id, "ERROR", reason, reason))


def test_a_full_round_trip_reads_each_stage(api, storage):
    job_id = api.post_id()
    first = api.result(job_id).json()["status"]
    claim = storage.claim_next("fermions", owner="spooler")
    running = api.status(job_id).json()["status"]
    storage.finish(claim, sqooler_result(job_id), "done")

    assert (first, running, api.status(job_id).json()["status"]) == (
        "INITIALIZING",
        "INITIALIZING",
        "DONE",
    )
    assert api.result(job_id).json()["results"][0]["data"]["memory"] == MEMORY


# ---- the edges of /api/ ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/",
        "/api/v2/",
        "/api/v3/alqor_fermions_simulator/get_config",
        "/api/v2/alqor_fermions_simulator/",
        "/api/v2/alqor_fermions_simulator/get_everything",
        "/api/v2/alqor_fermions_simulator/get_config/extra",
        "/api/qiskit-cold-atom/nothing",
        "/api/v2/admin/",
    ],
)
def test_an_unknown_path_under_api_is_a_json_404(client, db, path):
    assert answer(client.get(path)) == (404, error("Not found."))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{V2}/{BACKEND}/post_job"),
        ("POST", f"{V2}/{BACKEND}/get_config"),
        ("PUT", f"{V2}/{BACKEND}/post_job"),
        ("DELETE", f"{V2}/{BACKEND}/get_job_status"),
        ("PATCH", f"{V2}/backends"),
        ("POST", f"{QISKIT}/{BACKEND}/get_job_status"),
    ],
)
def test_a_wrong_method_answers_json_not_a_page(client, storage, method, path):
    response = client.generic(method, path)

    assert answer(response) == (405, error("Method not allowed."))


# ---- never a 500 ----------------------------------------------------------------------------


NASTY = ["", "x", "..", "%00", "\x00", "a" * 5000, "{}", "[]", "0" * 24, "é", "%2F", "' OR 1=1"]


@pytest.mark.parametrize("value", NASTY)
def test_no_request_produces_a_500_or_a_page(client, storage, token, value):
    job_id_query = {"job_id": value, "token": token}
    requests = [
        ("GET", f"{V2}/{BACKEND}/get_job_status", job_id_query),
        ("GET", f"{V2}/{BACKEND}/get_job_result", job_id_query),
        ("GET", f"{V2}/{BACKEND}/get_job_status", {"job_id": "0" * 24, "token": value}),
        ("GET", f"{QISKIT}/{BACKEND}/get_job_status", {"json": value, "token": token}),
        ("GET", f"{QISKIT}/{BACKEND}/get_job_result", job_id_query),
        ("POST", f"{V2}/{BACKEND}/post_job", {"job": value, "token": token}),
        ("POST", f"{V2}/{BACKEND}/post_job", {"job": value, "token": value}),
    ]
    for method, path, params in requests:
        if method == "GET":
            response = client.get(path, params)
        else:
            response = client.post(path, params, content_type="application/json")
        code, body = answer(response)
        assert code < 500, (path, params, body)
        assert set(body) == {"job_id", "status", "detail", "error_message"}


# ---- the qiskit-cold-atom mount -------------------------------------------------------------


def test_qiskit_result_of_a_done_job_is_finished_with_counts(api, storage):
    job_id = api.post_id(mount=QISKIT)
    run_to_done(storage)

    expected = sqooler_result(job_id)
    expected["results"][0]["data"]["counts"] = {"0 0 1 0 0 0 0 0": 2, "1 0 0 0 0 0 0 0": 1}
    expected = {**expected, "backend_name": BACKEND, "status": "finished"}
    assert answer(api.result(job_id, mount=QISKIT)) == (200, expected)


def test_qiskit_result_keeps_counts_a_spooler_wrote(api, storage):
    job_id = api.post_id()
    result = sqooler_result(job_id)
    result["results"][0]["data"]["counts"] = {"5": 3}
    run_to_done(storage, result)

    body = api.result(job_id, mount=QISKIT).json()

    assert body["results"][0]["data"]["counts"] == {"5": 3}


def test_qiskit_result_of_an_experiment_without_measure_counts_empty_strings(api, storage):
    job_id = api.post_id()
    result = sqooler_result(job_id)
    result["results"][0]["data"]["memory"] = ["", "", ""]
    run_to_done(storage, result)

    body = api.result(job_id, mount=QISKIT).json()

    assert body["results"][0]["data"]["counts"] == {"": 3}


def test_the_v2_result_of_the_same_job_is_unchanged(api, storage):
    job_id = api.post_id()
    run_to_done(storage)

    qiskit = api.result(job_id, mount=QISKIT).json()
    v2 = api.result(job_id).json()

    assert qiskit["status"] == "finished"
    assert v2 == {**sqooler_result(job_id), "backend_name": BACKEND, "status": "DONE"}
    assert "counts" not in v2["results"][0]["data"]


def test_qiskit_result_while_the_job_waits_is_the_v2_status(api):
    job_id = api.post_id()

    assert answer(api.result(job_id, mount=QISKIT)) == (
        200,
        status(job_id, "INITIALIZING", "Got your json."),
    )


def qiskit_error(detail: str, job_id: str = "None") -> dict:
    return {**error(detail, job_id), "status": "error"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("failed", None),
        ("missing", (406, qiskit_error(NO_STATUS, A_MISSING_ID))),
        ("bad id", (406, qiskit_error(NO_STATUS))),
        ("wrong token", (401, qiskit_error(BAD_TOKEN))),
        ("no job_id", (422, qiskit_error("Missing or invalid parameter: job_id."))),
        ("no token", (422, qiskit_error("Missing or invalid parameter: token."))),
        ("unknown backend", (404, qiskit_error(UNKNOWN))),
        ("impossible backend", (404, qiskit_error(UNKNOWN))),
        ("storage down", (503, None)),
    ],
)
def test_every_non_200_qiskit_result_carries_status_error(
    api, storage, storage_path, case, expected
):
    job_id = api.post_id()
    query: dict = {"job_id": job_id}
    backend = BACKEND
    if case == "failed":
        reason = "experiment_0, instruction 0 (load): bad"
        run_to_error(storage, reason)
        expected = (406, {**status(job_id, "ERROR", reason, reason), "status": "error"})
    elif case == "missing":
        query["job_id"] = A_MISSING_ID
    elif case == "bad id":
        query["job_id"] = "../x"
    elif case == "wrong token":
        query["token"] = "wrong"
    elif case == "no job_id":
        query["job_id"] = None
    elif case == "no token":
        query["token"] = None
    elif case == "unknown backend":
        backend = "alqor_nothing_simulator"
    elif case == "impossible backend":
        backend = "alqor%2Ffermions"
    elif case == "storage down":
        (storage_path / "status").rename(storage_path / "status-away")
        (storage_path / "status").write_text("in the way")
        detail = "The storage provider is not reachable right now. Try again later."
        expected = (503, qiskit_error(detail, "None"))

    response = api.result(mount=QISKIT, backend=backend, **query)

    assert answer(response) == expected


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_qiskit_result_with_a_wrong_method_says_error(client, storage, method):
    response = client.generic(method, f"{QISKIT}/{BACKEND}/get_job_result")

    assert answer(response) == (405, qiskit_error("Method not allowed."))


def test_qiskit_result_with_an_oversized_request_says_error(client, storage, token, settings):
    settings.MAX_REQUEST_BYTES = 100

    response = client.generic(
        "GET", f"{QISKIT}/{BACKEND}/get_job_result?job_id={A_MISSING_ID}&token={token}", "x" * 200
    )

    assert answer(response) == (413, qiskit_error("Request too large."))


@pytest.mark.object_ids
def test_qiskit_result_through_repeated_slashes_still_says_error(api, client, token):
    response = client.get(
        f"{QISKIT}//{BACKEND}//get_job_result", {"job_id": A_MISSING_ID, "token": token}
    )

    assert answer(response) == (406, qiskit_error(NO_STATUS, A_MISSING_ID))


def test_qiskit_status_takes_the_json_parameter_and_answers_as_v2(api):
    job_id = api.post_id()

    response = api.status(mount=QISKIT, json=json.dumps({"job_id": job_id}))

    assert answer(response) == (200, status(job_id, "INITIALIZING", "Got your json."))


def test_qiskit_status_of_a_failed_job_stays_upper_case(api, storage):
    job_id = api.post_id()
    run_to_error(storage, "broken")

    response = api.status(mount=QISKIT, json=json.dumps({"job_id": job_id}))

    assert answer(response) == (406, status(job_id, "ERROR", "broken", "broken"))


@pytest.mark.object_ids
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"json": "not json"}, (422, missing("job_id"))),
        ({"json": "[]"}, (422, missing("job_id"))),
        ({"json": '{"id": 1}'}, (422, missing("job_id"))),
        ({"json": '{"job_id": 5}'}, (422, missing("job_id"))),
        ({}, (422, missing("job_id"))),
        ({"json": '{"job_id": "abc"}'}, (406, error(NO_STATUS))),
        ({"json": json.dumps({"job_id": A_MISSING_ID})}, (406, error(NO_STATUS, A_MISSING_ID))),
    ],
)
def test_qiskit_status_with_a_bad_json_parameter(api, query, expected):
    api.post_id()

    assert answer(api.status(mount=QISKIT, **query)) == expected


def test_qiskit_status_prefers_a_plain_job_id_over_json(api):
    job_id = api.post_id()

    response = api.status(job_id, mount=QISKIT, json=json.dumps({"job_id": A_MISSING_ID}))

    assert answer(response) == (200, status(job_id, "INITIALIZING", "Got your json."))


def test_qiskit_mount_posts_jobs_like_v2(api, storage_path):
    response = api.post(mount=QISKIT, username="alice")

    code, body = answer(response)
    assert code == 200
    assert body == status(body["job_id"], "INITIALIZING", "Got your json.")
    assert (storage_path / f"jobs/queued/fermions/{body['job_id']}.json").exists()


def test_v2_status_does_not_take_the_json_parameter(api):
    job_id = api.post_id()

    response = api.status(json=json.dumps({"job_id": job_id}))

    assert answer(response) == (422, missing("job_id"))
