"""The dashboard's pages through Django's test client (issue 16), on local storage."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from backends.auth import issue_token
from backends.dashboard.models import TokenName
from backends.models import Job, JobStatus, Token, UserQuota
from storage_providers import Place
from tests.jobs import BACKEND, CANCELLED, JOB, NO_STATUS, JobsApi, run_to_done, run_to_error

PASSWORD = "correct horse battery staple"
DASH = "/dashboard/"
PAGES = [
    DASH,
    "/dashboard/submit/",
    "/dashboard/tokens/",
    "/dashboard/backends/",
    "/dashboard/staff/",
    "/dashboard/jobs/6b070cfd7ea59f692e581d7d/",
]


@pytest.fixture
def alice(user):  # type: ignore[no-untyped-def]
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def page(client, alice, storage):  # type: ignore[no-untyped-def]
    """A test client logged in as alice, with the fermions backend on local storage."""
    client.force_login(alice)
    return client


@pytest.fixture
def api(client, storage, token) -> JobsApi:  # type: ignore[no-untyped-def]
    return JobsApi(Client(), token)


def text(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode()


def bob_job(storage) -> str:  # type: ignore[no-untyped-def]
    bob = get_user_model().objects.create_user("bob", password=None)
    return JobsApi(Client(), issue_token(bob)[1]).post_id()


# ---- logging in ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_every_page_sends_a_stranger_to_the_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/login/?next={url}"


def test_the_login_page_offers_password_and_token_forms_with_csrf(client, db):
    body = text(client.get("/dashboard/login/"))
    assert body.count('name="csrfmiddlewaretoken"') == 2
    assert 'name="password"' in body and 'name="token"' in body


def test_a_password_logs_in(client, alice):
    response = client.post("/dashboard/login/", {"username": "alice", "password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, DASH)
    assert client.get(DASH).status_code == 200


def test_a_wrong_password_is_refused_on_the_page(client, alice):
    response = client.post("/dashboard/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in text(response)
    assert client.get(DASH).status_code == 302


def test_an_api_token_starts_a_session(client, alice, token):
    response = client.post(
        "/dashboard/login/token/", {"token": token, "next": "/dashboard/tokens/"}
    )
    assert (response.status_code, response["Location"]) == (302, "/dashboard/tokens/")
    assert client.get(DASH).status_code == 200


@pytest.mark.parametrize("given", ["not-a-token", "x" * 600])
def test_a_wrong_token_is_refused_on_the_page(client, alice, given):
    response = client.post("/dashboard/login/token/", {"token": given})
    assert response.status_code == 401
    assert "Invalid credentials!" in text(response) or "at most 512" in text(response)
    assert client.get(DASH).status_code == 302


def test_a_revoked_token_ends_the_session_it_started(client, alice, token):
    client.post("/dashboard/login/token/", {"token": token})
    Token.objects.update(is_active=False)
    response = client.get(DASH, follow=True)
    assert response.redirect_chain == [(f"/dashboard/login/?next={DASH}", 302)]
    assert "The token you logged in with was revoked: log in again." in text(response)
    assert client.get(DASH).status_code == 302


def test_an_inactive_users_token_does_not_log_in(client, alice, token):
    alice.is_active = False
    alice.save()
    assert client.post("/dashboard/login/token/", {"token": token}).status_code == 401


def test_logging_out_takes_a_post(page):
    assert page.get("/dashboard/logout/").status_code == 405
    assert page.post("/dashboard/logout/")["Location"] == "/dashboard/login/"
    assert page.get(DASH).status_code == 302


def test_forms_refuse_a_post_without_csrf(alice, storage):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/dashboard/tokens/", {"name": "x"}).status_code == 403
    assert strict.post("/dashboard/login/token/", {"token": "x"}).status_code == 403


# ---- my jobs -------------------------------------------------------------------------------


def test_my_jobs_lists_mine_with_badges_and_times_but_not_bobs(page, api, storage):
    mine = api.post_id()
    theirs = bob_job(storage)
    body = text(page.get(DASH))
    assert mine in body and theirs not in body
    assert 'class="badge badge-queued">QUEUED<' in body
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", body)
    assert BACKEND in body


def test_my_jobs_reloads_itself_only_while_a_job_is_open(page, api, storage):
    api.post_id()
    assert '<meta http-equiv="refresh" content="3">' in text(page.get(DASH))
    run_to_done(storage)
    assert "http-equiv" not in text(page.get(DASH))


def test_my_jobs_filters_by_status_and_backend(page, api, storage):
    done = api.post_id()
    run_to_done(storage)
    queued = api.post_id()
    body = text(page.get(DASH, {"status": "DONE"}))
    assert done in body and queued not in body
    body = text(page.get(DASH, {"status": "QUEUED", "backend": BACKEND}))
    assert queued in body and done not in body


def test_my_jobs_shows_a_bad_filter_inline(page, storage):
    response = page.get(DASH, {"status": "LOST", "submitted_after": "yesterday"})
    assert response.status_code == 200
    body = text(response)
    assert "Select a valid choice" in body and "Enter a valid date/time" in body


def test_my_jobs_pages_with_the_cursor(page, api, storage):
    ids = [api.post_id() for _ in range(21)]
    first = text(page.get(DASH))
    assert ids[0] not in first and ids[-1] in first
    older = re.search(r'href="\?([^"]*cursor=[^"]+)"', first)
    assert older is not None
    second = text(page.get(DASH + "?" + older.group(1).replace("&amp;", "&")))
    assert ids[0] in second and ids[-1] not in second


def test_a_bad_cursor_is_shown_not_raised(page, storage):
    response = page.get(DASH, {"cursor": "!!"})
    assert response.status_code == 200
    assert "Missing or invalid parameter: cursor." in text(response)


# ---- one job ---------------------------------------------------------------------------------


def test_a_done_job_shows_a_histogram_per_experiment(page, api, storage):
    job = {"experiment_0": JOB["experiment_0"], "experiment_1": JOB["experiment_0"]}
    job_id = api.post_id(job)
    claim = storage.claim_next("fermions", owner="test")
    result = {
        "job_id": job_id,
        "status": "INITIALIZING",
        "success": True,
        "header": {},
        "results": [
            {"header": {"name": name}, "shots": 3, "success": True, "data": {"memory": memory}}
            for name, memory in (("experiment_0", ["0 1", "0 1", "1 0"]), ("experiment_1", [""]))
        ],
    }
    storage.conclude(claim, result, "Done.")
    body = text(page.get(f"/dashboard/jobs/{job_id}/"))
    assert body.count("<svg") == 2
    assert "<title>0 1: 2</title>" in body and "<title>1 0: 1</title>" in body
    assert "<title>(none): 1</title>" in body
    assert "experiment_1" in body and "http-equiv" not in body


def test_a_failed_job_shows_its_error_text(page, api, storage):
    job_id = api.post_id()
    run_to_error(storage, "experiment_0, instruction 0 (load): already occupied")
    body = text(page.get(f"/dashboard/jobs/{job_id}/"))
    assert "Why it failed" in body
    assert "experiment_0, instruction 0 (load): already occupied" in body
    assert "<svg" not in body


def test_a_queued_job_shows_its_place_and_reloads(page, api, storage):
    api.post_id()
    job_id = api.post_id()
    body = text(page.get(f"/dashboard/jobs/{job_id}/"))
    assert "Place in queue</dt><dd>2<" in body
    assert 'http-equiv="refresh"' in body and "Cancel this job" in body
    assert "&quot;experiment_0&quot;" in body  # the job as posted


def test_another_users_job_is_missing_on_the_page(page, storage):
    job_id = bob_job(storage)
    response = page.get(f"/dashboard/jobs/{job_id}/")
    assert response.status_code == 404
    assert NO_STATUS in text(response) and job_id not in text(response).split("<main>")[0]


def test_a_job_id_of_no_form_is_missing(page, storage):
    assert page.get("/dashboard/jobs/..%2F..%2Fetc/").status_code == 404


# ---- cancel ---------------------------------------------------------------------------------


def test_cancel_takes_a_queued_job_out_of_the_queue(page, api, storage):
    job_id = api.post_id()
    response = page.post(f"/dashboard/jobs/{job_id}/cancel/", {"next": DASH}, follow=True)
    assert f"Job {job_id} is cancelled." in text(response)
    assert Job.objects.get(job_id=job_id).status == JobStatus.CANCELLED
    assert storage.list_ids(Place.QUEUED, "fermions") == []
    assert api.status(job_id).json()["detail"] == CANCELLED


def test_cancel_of_an_ended_job_says_why(page, api, storage):
    job_id = api.post_id()
    run_to_done(storage)
    response = page.post(f"/dashboard/jobs/{job_id}/cancel/", follow=True)
    assert "The job has ended already (DONE)." in text(response)


def test_cancel_of_another_users_job_changes_nothing(page, storage):
    job_id = bob_job(storage)
    response = page.post(f"/dashboard/jobs/{job_id}/cancel/", follow=True)
    assert NO_STATUS in text(response)
    assert Job.objects.get(job_id=job_id).status == JobStatus.QUEUED


def test_cancel_takes_a_post(page, api):
    job_id = api.post_id()
    assert page.get(f"/dashboard/jobs/{job_id}/cancel/").status_code == 405


# ---- submit ---------------------------------------------------------------------------------


def test_submit_offers_the_backends_and_their_examples(page):
    body = text(page.get("/dashboard/submit/"))
    assert f'<option value="{BACKEND}" selected>' in body
    assert "Load and measure" in body and "One fhop gate" in body


def test_an_example_loads_into_the_text_box(page):
    form = {"backend": BACKEND, "example": "One fhop gate", "job": "", "load_example": "1"}
    response = page.post("/dashboard/submit/", form)
    assert response.status_code == 200
    job = json.loads(response.context["form"].initial["job"])
    assert job["experiment_0"]["instructions"][1][0] == "fhop"
    assert Job.objects.count() == 0


def test_submitting_goes_through_post_job_and_opens_the_job(page, storage):
    form = {"backend": BACKEND, "job": json.dumps(JOB), "shots": "7", "submit_job": "1"}
    response = page.post("/dashboard/submit/", form)
    row = Job.objects.get()
    assert response["Location"] == f"/dashboard/jobs/{row.job_id}/"
    assert (row.owner.username, row.backend_name, row.shots) == ("alice", BACKEND, 7)
    assert storage.job_document("fermions", row.job_id)["experiment_0"]["shots"] == 7


@pytest.mark.parametrize(
    ("job", "says"),
    [
        ("{not json", "The job is not valid JSON."),
        ("[1, 2]", "The job must be a non-empty JSON object of experiments."),
        ('{"experiment_0": {"num_wires": 8, "shots": 3}}', "experiment_0"),
        ("", "Paste a job, or pick an example and load it."),
    ],
)
def test_a_refused_job_is_shown_inline(page, storage, job, says):
    form = {"backend": BACKEND, "job": job, "submit_job": "1"}
    response = page.post("/dashboard/submit/", form)
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert says in " ".join(errors["job"]), errors
    assert Job.objects.count() == 0


def test_an_unknown_backend_or_bad_shots_are_refused_inline(page):
    form = {"backend": "alqor_nowhere_simulator", "job": json.dumps(JOB), "shots": "0"}
    response = page.post("/dashboard/submit/", {**form, "submit_job": "1"})
    errors = response.context["form"].errors
    assert set(errors) == {"backend", "shots"}


def test_a_quota_is_shown_inline(page, alice, storage):
    UserQuota.objects.create(user=alice, max_queued_jobs=1)
    form = {"backend": BACKEND, "job": json.dumps(JOB), "submit_job": "1"}
    page.post("/dashboard/submit/", form)
    response = page.post("/dashboard/submit/", form)
    assert response.status_code == 422
    assert "Try again in" in " ".join(response.context["form"].non_field_errors())
    assert Job.objects.count() == 1


# ---- my tokens ------------------------------------------------------------------------------


def test_a_token_issued_on_the_page_is_shown_once_and_works(page, api):
    response = page.post("/dashboard/tokens/", {"name": "laptop"})
    plaintext = response.context["plaintext"]
    assert plaintext in text(response) and response["Cache-Control"] == "no-store"
    assert TokenName.objects.get().name == "laptop"
    assert plaintext not in text(page.get("/dashboard/tokens/"))
    assert "laptop" in text(page.get("/dashboard/tokens/"))
    assert api.jobs(token=plaintext).status_code == 200


def test_a_token_needs_a_name(page):
    response = page.post("/dashboard/tokens/", {"name": ""})
    assert response.context["plaintext"] is None
    assert "This field is required." in text(response)


def test_a_revoked_token_is_refused_by_the_api(page, api, alice):
    token, plaintext = issue_token(alice)
    response = page.post(f"/dashboard/tokens/{token.pk}/revoke/", follow=True)
    assert "Token revoked" in text(response)
    assert api.jobs(token=plaintext).status_code == 401
    assert ">revoked<" in text(response)


def test_another_users_token_cannot_be_revoked(page, db):
    bob = get_user_model().objects.create_user("bob", password=None)
    token, _ = issue_token(bob)
    response = page.post(f"/dashboard/tokens/{token.pk}/revoke/", follow=True)
    assert "No such active token." in text(response)
    assert Token.objects.get(pk=token.pk).is_active
    assert token.key[:8] not in text(page.get("/dashboard/tokens/"))


# ---- backends and staff -----------------------------------------------------------------------


def test_backends_shows_status_queue_gates_and_config_link(page, api, storage):
    api.post_id()
    body = text(page.get("/dashboard/backends/"))
    assert BACKEND in body and ">not operational<" in body
    assert "Queue depth</dt><dd>1<" in body
    assert "fhop" in body and "[0, 1, 2, 3]" in body
    assert f'href="/api/v2/{BACKEND}/get_config"' in body


def test_a_backend_whose_spooler_looked_recently_is_operational(page, storage):
    from storage_providers.schemas import utcnow

    config = storage.get_config("fermions")
    storage.upload_config("fermions", {**config, "last_queue_check": utcnow().isoformat()})
    body = text(page.get("/dashboard/backends/"))
    assert ">operational<" in body and "s ago)" in body


def test_the_staff_page_is_for_staff_only(page):
    response = page.get("/dashboard/staff/")
    assert response.status_code == 403
    assert "For staff only" in text(response)
    assert "/dashboard/staff/" not in text(page.get(DASH))


def test_the_staff_page_counts_jobs_per_hour_and_the_error_rate(page, alice, api, storage):
    alice.is_staff = True
    alice.save()
    for _ in range(3):
        api.post_id()
    run_to_done(storage)
    run_to_error(storage, "broken")
    response = page.get("/dashboard/staff/")
    (day,) = response.context["days"]
    assert (day.backend, day.submitted, day.done, day.failed) == (BACKEND, 3, 1, 1)
    assert day.per_hour[-1] == 3
    assert "50.0 %" in text(response) and "3 jobs" in text(response)
