"""Tokens: refused alike whatever is wrong with them, and wrong ones slowed down (issue 13).

The counter of wrong tokens per client address lives in the database by default and
in Redis when CACHE_URL names it (the Redis server at 127.0.0.1:6379 here and on CI);
both are tested in process and across the workers of a live gunicorn.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.test_operator_gunicorn import PYTHON, ROOT, bare_env, start_server, stop

REDIS_URL = "redis://127.0.0.1:6379/0"
STATUS = "/api/v2/alqor_fermions_simulator/get_job_status"
JOB_ID = "6b0000000000000000000000"


def error(detail: str) -> dict:
    return {"job_id": "None", "status": "ERROR", "detail": detail, "error_message": detail}


REFUSED = (401, error("Invalid credentials!"))
THROTTLED = error("Too many failed attempts. Try again later.")


def answer(response) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    return response.status_code, response.json()


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest, settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Where wrong tokens are counted: Django's database, or the Redis of CACHE_URL."""
    if request.param == "redis":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
            }
        }
        settings.THROTTLE_CACHE = "default"
    else:
        settings.THROTTLE_CACHE = ""
    settings.FAILED_TOKEN_ATTEMPTS_PER_MINUTE = 3
    settings.TRUSTED_PROXIES = []
    yield request.param


# ---- refused alike ------------------------------------------------------------------------------


@pytest.fixture
def wrong_tokens(user, token) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One token of each kind of wrong, each refused the same way."""
    from django.contrib.auth import get_user_model

    from backends.auth import issue_token

    inactive_row, inactive = issue_token(user)
    inactive_row.is_active = False
    inactive_row.save()
    bob = get_user_model().objects.create_user("bob", is_active=False)
    return {
        "unknown": "x" * 43,
        "inactive": inactive,
        "of an inactive user": issue_token(bob)[1],
        "malformed": "not a token ;-) \u00e9",
        "a lone surrogate": "\ud800abc",
        "one megabyte": "t" * 1_000_000,
        "valid with a space after": token + " ",
    }


KINDS = [
    "unknown",
    "inactive",
    "of an inactive user",
    "malformed",
    "a lone surrogate",
    "one megabyte",
    "valid with a space after",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_wrong_token_is_refused_alike_with_one_lookup(
    client, wrong_tokens, kind, django_assert_num_queries, settings
):
    settings.FAILED_TOKEN_ATTEMPTS_PER_MINUTE = 0  # only the token's own lookup is counted
    body = {"job": "{}", "token": wrong_tokens[kind]}

    with django_assert_num_queries(1):
        response = client.post(
            "/api/v2/alqor_fermions_simulator/post_job", body, content_type="application/json"
        )

    assert answer(response) == REFUSED


def test_tokens_are_compared_in_constant_time_after_the_lookup(monkeypatch, token):
    from backends import auth

    compared = []
    real = auth.hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)

    caller = auth.authenticate(token)

    assert caller.username == "alice"
    assert compared == [(auth.token_digest(token),) * 2]


# ---- slowed down ---------------------------------------------------------------------------------


def _status(client, token: str, address: str = "127.0.0.1", **headers: str):  # type: ignore[no-untyped-def]
    return client.get(STATUS, {"job_id": JOB_ID, "token": token}, REMOTE_ADDR=address, **headers)


def test_wrong_tokens_past_the_limit_answer_429_with_retry_after(client, db, store):
    answers = [answer(_status(client, f"wrong{i}")) for i in range(3)]
    throttled = _status(client, "wrong3")

    assert answers == [REFUSED] * 3
    assert answer(throttled) == (429, THROTTLED)
    assert 1 <= int(throttled["Retry-After"]) <= 60


def test_a_valid_token_is_never_refused_for_them(client, storage, token, store):
    for i in range(5):
        _status(client, f"wrong{i}")

    response = _status(client, token)

    assert answer(response) == (406, {**error("Could not find the status file."), "job_id": JOB_ID})


def test_another_address_is_counted_on_its_own(client, db, store):
    for i in range(4):
        _status(client, f"wrong{i}", "10.0.0.1")

    assert answer(_status(client, "wrong", "10.0.0.2")) == REFUSED


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(client, db, store):
    for i in range(3):
        _status(client, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")

    assert _status(client, "wrong", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(client, db, store, settings):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1")]
    for _ in range(3):
        # a client may write anything on the left; the trusted proxy appended 192.0.2.7
        _status(client, "wrong", HTTP_X_FORWARDED_FOR="203.0.113.1, 192.0.2.7")

    assert _status(client, "w", HTTP_X_FORWARDED_FOR="198.51.100.1, 192.0.2.7").status_code == 429
    assert answer(_status(client, "w", HTTP_X_FORWARDED_FOR="192.0.2.8")) == REFUSED


def test_parameters_are_checked_before_the_counter_and_the_counter_before_404(client, db, store):
    for i in range(3):
        _status(client, f"wrong{i}")

    missing_job_id = client.get(STATUS, {"token": "wrong"})
    unknown_backend = client.get("/api/v2/nowhere/get_config")
    unknown_with_token = client.get(
        "/api/v2/x_nowhere_simulator/get_job_status", {"job_id": JOB_ID, "token": "wrong"}
    )

    assert answer(missing_job_id) == (422, error("Missing or invalid parameter: job_id."))
    assert unknown_backend.status_code == 404  # no token there: nothing to count
    assert answer(unknown_with_token) == (429, THROTTLED)


def test_a_cache_that_does_not_answer_counts_in_the_database(client, db, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    settings.THROTTLE_CACHE = "default"
    settings.FAILED_TOKEN_ATTEMPTS_PER_MINUTE = 1

    first, second = _status(client, "wrong"), _status(client, "wrong")

    assert (answer(first), second.status_code) == (REFUSED, 429)


# ---- across the workers of a live gunicorn ----------------------------------------------------


@pytest.mark.parametrize("cache_url", ["", REDIS_URL])
def test_wrong_tokens_are_counted_across_gunicorn_workers(tmp_path, cache_url):
    settings = {"FAILED_TOKEN_ATTEMPTS_PER_MINUTE": "6"}
    if cache_url:
        settings["CACHE_URL"] = cache_url
        _flush_counters(cache_url)
    server = start_server(tmp_path, "-w", "3", **settings)
    url = f"http://127.0.0.1:{server.port}{STATUS}"
    try:
        codes = []
        for i in range(9):  # a fresh connection each: gunicorn's workers take turns
            with requests.Session() as session:
                params = {"job_id": JOB_ID, "token": f"wrong{i}"}
                codes.append(session.get(url, params=params, timeout=10).status_code)
        valid = requests.get(url, params={"job_id": JOB_ID, "token": server.token}, timeout=10)
    finally:
        stop(server)
    workers = (tmp_path / "gunicorn.log").read_text().count("Booting worker")

    assert workers == 3
    assert codes == [401] * 6 + [429] * 3
    assert valid.status_code == 406


def _flush_counters(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter("*qlued:failed-tokens:*"):
        client.delete(key)


# ---- settings ----------------------------------------------------------------------------------


BAD_SETTINGS = {
    "CACHE_URL": ("memcached://127.0.0.1:11211", "must be a redis:// or rediss:// URL."),
    "TRUSTED_PROXIES": ("10.0.0.1,proxy", "must list IP addresses or networks."),
    "FAILED_TOKEN_ATTEMPTS_PER_MINUTE": ("-1", "must not be negative."),
}


@pytest.mark.parametrize("name", BAD_SETTINGS)
def test_a_bad_setting_is_one_line(tmp_path, name):
    value, message = BAD_SETTINGS[name]
    env = {**bare_env(tmp_path), name: value}

    done = subprocess.run(
        [PYTHON, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"ImproperlyConfigured: {name} {message}"


# ---- another user's job -------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["get_job_status", "get_job_result"])
def test_another_users_job_answers_exactly_like_a_missing_one(
    client, storage, token, endpoint, django_assert_num_queries, monkeypatch
):
    from django.contrib.auth import get_user_model

    from backends.auth import issue_token
    from storage_providers import LocalProvider

    posted = client.post(
        "/api/v2/alqor_fermions_simulator/post_job",
        {"job": '{"e": {"instructions": [], "num_wires": 1, "shots": 1}}', "token": token},
        content_type="application/json",
    )
    alices = posted.json()["job_id"]
    missing = "6b" + alices[2:-4] + "ffff"
    bob = issue_token(get_user_model().objects.create_user("bob"))[1]
    reads = []
    real_read = LocalProvider._read

    def counted(self, ref):  # type: ignore[no-untyped-def]
        reads.append(ref)
        return real_read(self, ref)

    monkeypatch.setattr(LocalProvider, "_read", counted)
    url = f"/api/v2/alqor_fermions_simulator/{endpoint}"

    def ask(job_id: str) -> tuple[int, dict, int, int]:
        reads.clear()
        with django_assert_num_queries(3) as queries:
            response = client.get(url, {"job_id": job_id, "token": bob})
        return response.status_code, response.json(), len(queries), len(reads)

    theirs, nobodys = ask(alices), ask(missing)

    refused = error("Could not find the status file.")
    assert theirs[:3] == (406, {**refused, "job_id": alices}, 3)
    assert nobodys[:3] == (406, {**refused, "job_id": missing}, 3)
    assert theirs[3] == nobodys[3] == 1  # the backend's config; the job itself is never read
