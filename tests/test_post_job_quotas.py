"""Per-user quotas on post_job (issue 14): jobs open at once and posts per minute, on every
medium; counted in the ledger, so concurrent posts never overshoot."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from backends.models import Job, UserQuota
from storage_providers import Place
from storage_providers.schemas import utcnow
from tests.conftest import every_medium
from tests.jobs import BAD_TOKEN, JobsApi, answer, error, run_to_done, token_of

pytest_generate_tests = every_medium

OPEN_FULL = (
    "Too many jobs: at most {} may be queued or running at once. "
    "Try again when one of them has ended."
)


def rate_full(limit: int, seconds: int) -> str:
    return f"Too many posts: at most {limit} jobs a minute. Try again in {seconds} seconds."


@pytest.fixture
def jobs_api(client, storage, token) -> JobsApi:  # type: ignore[no-untyped-def]
    return JobsApi(client, token)


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    """The quotas' clock, held still at a known instant."""
    now = utcnow().replace(microsecond=0)
    monkeypatch.setattr("backends.quotas.timezone.now", lambda: now)
    return now


def test_over_the_posts_per_minute_is_429_with_retry_after(jobs_api, storage, settings, clock):
    settings.QUOTA_POSTS_PER_MINUTE = 2
    ids = [jobs_api.post_id(), jobs_api.post_id()]
    Job.objects.filter(job_id=ids[0]).update(submitted_at=clock - timedelta(seconds=45))
    Job.objects.filter(job_id=ids[1]).update(submitted_at=clock - timedelta(seconds=20))

    response = jobs_api.post()

    assert answer(response) == (429, error(rate_full(2, 15)))
    assert response["Retry-After"] == "15"
    assert Job.objects.count() == 2
    assert sorted(storage.list_ids(Place.QUEUED, "fermions")) == sorted(ids)


def test_a_post_a_minute_old_no_longer_counts(jobs_api, settings, clock):
    settings.QUOTA_POSTS_PER_MINUTE = 1
    first = jobs_api.post_id()
    Job.objects.filter(job_id=first).update(submitted_at=clock - timedelta(seconds=61))

    assert jobs_api.post().status_code == 200


def test_over_the_open_jobs_is_429_until_one_has_ended(jobs_api, storage, settings):
    settings.QUOTA_QUEUED_JOBS = 2
    jobs_api.post_id()
    jobs_api.post_id()

    response = jobs_api.post()
    assert answer(response) == (429, error(OPEN_FULL.format(2)))
    assert response["Retry-After"] == "30"

    run_to_done(storage)  # the ledger has not seen it yet: the quota looks
    assert jobs_api.post().status_code == 200


def test_a_cancelled_job_frees_its_place(jobs_api, settings):
    settings.QUOTA_QUEUED_JOBS = 1
    job_id = jobs_api.post_id()
    assert jobs_api.post().status_code == 429

    jobs_api.cancel(job_id)

    assert jobs_api.post().status_code == 200


def test_quotas_are_per_user(jobs_api, settings):
    settings.QUOTA_QUEUED_JOBS = 1
    jobs_api.post_id()

    assert jobs_api.post(token=token_of("bob")).status_code == 200


@pytest.mark.parametrize(
    ("own", "setting", "allowed"),
    [
        ({"max_queued_jobs": 1}, 5, 1),
        ({"max_queued_jobs": 3}, 1, 3),
        ({"max_queued_jobs": 0}, 1, 4),  # 0: no limit
        ({"max_queued_jobs": None}, 2, 2),  # empty: the setting
        ({"max_posts_per_minute": 2}, 10, 2),
    ],
)
def test_a_users_own_quota_overrides_the_setting(jobs_api, user, settings, own, setting, allowed):
    settings.QUOTA_QUEUED_JOBS = setting
    settings.QUOTA_POSTS_PER_MINUTE = setting if "max_posts_per_minute" in own else 0
    UserQuota.objects.create(user=user, **own)

    codes = [jobs_api.post().status_code for _ in range(4)]

    assert codes == [200] * allowed + [429] * (4 - allowed)


def test_no_limit_when_the_settings_say_0(jobs_api, settings):
    settings.QUOTA_QUEUED_JOBS = 0
    settings.QUOTA_POSTS_PER_MINUTE = 0

    assert {jobs_api.post().status_code for _ in range(5)} == {200}


def test_the_quota_comes_after_the_token_and_the_backend(jobs_api, settings):
    settings.QUOTA_QUEUED_JOBS = 1
    jobs_api.post_id()

    assert answer(jobs_api.post(token="wrong")) == (401, error(BAD_TOKEN))
    unknown = (404, error("Unknown back-end!"))
    assert answer(jobs_api.post(backend="alqor_nothing_simulator")) == unknown
    assert jobs_api.post("not json").status_code == 429  # before 406


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_never_take_more_places_than_there_are(client, storage, settings):
    settings.QUOTA_QUEUED_JOBS = 3
    user = get_user_model().objects.create_user("carol", password=None)
    from backends.auth import issue_token

    token = issue_token(user)[1]
    codes: list[int] = []
    start = threading.Barrier(6)

    def post() -> None:
        from django.db import connections
        from django.test import Client

        try:
            start.wait()
            codes.append(JobsApi(Client(), token).post().status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(codes) == [200, 200, 200, 429, 429, 429]
    assert Job.objects.filter(owner=user).count() == 3
    assert len(storage.list_ids(Place.QUEUED, "fermions")) == 3


def test_the_admin_edits_a_users_quota(admin_client, user):
    response = admin_client.post(
        "/admin/backends/userquota/add/",
        {"user": user.pk, "max_queued_jobs": "5", "max_posts_per_minute": ""},
    )

    assert response.status_code == 302
    quota = UserQuota.objects.get()
    assert (quota.max_queued_jobs, quota.max_posts_per_minute) == (5, None)
