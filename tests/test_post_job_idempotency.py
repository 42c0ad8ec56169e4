"""post_job with an Idempotency-Key header (issue 14), on every medium."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from backends.models import IdempotencyKey, Job
from storage_providers import Place
from storage_providers.schemas import utcnow
from tests.conftest import FERMIONS_CONFIG, every_medium
from tests.jobs import (
    BAD_TOKEN,
    EXPERIMENT,
    JobsApi,
    answer,
    error,
    missing,
    token_of,
)

pytest_generate_tests = every_medium

KEY = "retry-7f3a"
OTHER_JOB = {"experiment_0": {**EXPERIMENT, "shots": 4}}


@pytest.fixture
def jobs_api(client, storage, token) -> JobsApi:  # type: ignore[no-untyped-def]
    return JobsApi(client, token)


def queued(storage) -> list[str]:  # type: ignore[no-untyped-def]
    return storage.list_ids(Place.QUEUED, "fermions")


def test_the_same_key_answers_the_first_answer_again_and_creates_nothing(jobs_api, storage):
    first = answer(jobs_api.post(key=KEY))

    again = answer(jobs_api.post(key=KEY))

    assert first[0] == 200
    assert again == first
    assert Job.objects.count() == 1
    assert queued(storage) == [first[1]["job_id"]]


def test_the_same_key_for_another_job_or_backend_is_422(jobs_api, storage):
    storage.upload_config("spins", {**FERMIONS_CONFIG, "display_name": "spins"})
    jobs_api.post_id(key=KEY)

    assert answer(jobs_api.post(OTHER_JOB, key=KEY)) == (422, missing("Idempotency-Key"))
    spins = "alqor_spins_simulator"
    assert answer(jobs_api.post(key=KEY, backend=spins)) == (422, missing("Idempotency-Key"))
    assert Job.objects.count() == 1


def test_the_same_backend_under_its_short_name_is_the_same_request(jobs_api):
    job_id = jobs_api.post_id(key=KEY)

    assert jobs_api.post_id(key=KEY, backend="fermions") == job_id


def test_a_key_is_the_users_own(jobs_api):
    mine = jobs_api.post_id(key=KEY)

    theirs = jobs_api.post_id(key=KEY, token=token_of("bob"))

    assert mine != theirs and Job.objects.count() == 2


def test_without_a_key_every_post_is_a_new_job(jobs_api):
    assert jobs_api.post_id() != jobs_api.post_id()


def test_a_refused_post_is_not_remembered(jobs_api):
    assert jobs_api.post("not json", key=KEY).status_code == 406
    assert jobs_api.post(key=KEY, token="wrong").status_code == 401

    code, body = answer(jobs_api.post(OTHER_JOB, key=KEY))

    assert code == 200
    assert list(Job.objects.values_list("job_id", flat=True)) == [body["job_id"]]


def test_a_post_whose_storage_write_failed_is_not_remembered(jobs_api, storage, monkeypatch):
    from storage_providers import Unavailable

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Unavailable("down")

    with monkeypatch.context() as patched:
        patched.setattr(type(storage), "submit_job", broken)
        assert jobs_api.post(key=KEY).status_code == 406

    assert jobs_api.post(key=KEY).status_code == 200
    assert IdempotencyKey.objects.get().response  # remembered: the second post succeeded


def test_a_key_older_than_a_day_is_forgotten(jobs_api):
    first = jobs_api.post_id(key=KEY)
    IdempotencyKey.objects.update(created_at=utcnow() - timedelta(hours=24, seconds=1))

    second = jobs_api.post_id(key=KEY)

    assert second != first
    assert jobs_api.post_id(key=KEY) == second  # the key holds the new answer now
    assert Job.objects.count() == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "ключ", "a\tb"])
def test_a_key_that_cannot_be_one_is_422_before_the_token_is_checked(jobs_api, key):
    assert answer(jobs_api.post(key=key, token="wrong")) == (422, missing("Idempotency-Key"))
    assert not Job.objects.exists()


def test_the_checks_come_in_spec_order_around_the_key(jobs_api, settings):
    jobs_api.post_id(key=KEY)

    assert answer(jobs_api.post(OTHER_JOB, key=KEY, token="wrong")) == (401, error(BAD_TOKEN))
    unknown = (404, error("Unknown back-end!"))
    assert answer(jobs_api.post(OTHER_JOB, key=KEY, backend="alqor_x_simulator")) == unknown
    reused = jobs_api.post("not json", key=KEY)
    assert answer(reused) == (422, missing("Idempotency-Key"))  # 422 (the key) before 406
    settings.QUOTA_POSTS_PER_MINUTE = 1
    assert jobs_api.post(OTHER_JOB, key=KEY).status_code == 429  # the quota before the key


def test_a_replay_is_not_held_to_the_quota(jobs_api, settings):
    first = answer(jobs_api.post(key=KEY))
    settings.QUOTA_POSTS_PER_MINUTE = 1

    assert answer(jobs_api.post(key=KEY)) == first


def test_a_replay_answers_the_first_answer_byte_for_byte(jobs_api):
    first = jobs_api.post(key=KEY)

    assert jobs_api.post(key=KEY).content == first.content
    assert json.loads(first.content)["status"] == "INITIALIZING"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("posts", [2, 4])
def test_concurrent_posts_with_one_key_create_one_job(client, storage, token, posts):
    answers: list[tuple[int, dict]] = []
    start = threading.Barrier(posts)

    def post() -> None:
        from django.db import connections
        from django.test import Client

        try:
            start.wait()
            answers.append(answer(JobsApi(Client(), token).post(key=KEY)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert Job.objects.count() == 1
    job_id = Job.objects.get().job_id
    for code, body in answers:
        assert (code, body["job_id"]) in ((200, job_id), (409, "None"))
    assert len(answers) == posts
    assert any(code == 200 for code, _ in answers)
    assert queued(storage) == [job_id]


def test_post_job_documents_the_key_and_its_answers(client, storage):
    schema = client.get("/api/v2/openapi.json").json()

    post = schema["paths"]["/api/v2/{backend}/post_job"]["post"]
    assert "Idempotency-Key" in post["description"]
    assert {"200", "409", "422", "429"} <= set(post["responses"])
