"""The dashboard as a person uses it: headless chromium against a live server (issue 16).

The built-in spooler runs beside the server on the same local storage; the
singlequdit backend has no spooler, so that its jobs stay queued.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from backends.auth import issue_token
from spooler.simulators import BACKENDS
from tests.browser.conftest import SCREENSHOTS, shoot
from tests.jobs import JOB

pytestmark = pytest.mark.browser

PASSWORD = "a long lab password"
FERMIONS = "alqor_fermions_simulator"
QUDIT = "alqor_singlequdit_simulator"
DONE_WITHIN = 60_000  # ms: the spooler polls its queue, the page reloads every 3 s


@pytest.fixture
def alice(user):  # type: ignore[no-untyped-def]
    user.set_password(PASSWORD)
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def qudit(storage):  # type: ignore[no-untyped-def]
    """A second backend that no spooler serves."""
    storage.upload_config("singlequdit", BACKENDS["singlequdit"].config())
    return storage


def log_in(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server.url}/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login/\?next="))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="My jobs")).to_be_visible()


def reload_until(page, locator, text: str, tries: int = 60) -> None:  # type: ignore[no-untyped-def]
    """Reload a page that does not reload itself until `locator` reads `text`."""
    for _ in range(tries):
        if locator.count() and locator.first.inner_text().strip() == text:
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(locator.first).to_have_text(text)


def test_submit_a_job_watch_it_finish_and_read_its_histogram(
    page, live_server, alice, qudit, spooler
):
    page.goto(f"{live_server.url}/dashboard/login/")
    shoot(page, "01-login")
    log_in(page, live_server)

    page.get_by_role("link", name="Submit", exact=True).click()
    page.get_by_label("Backend").select_option(FERMIONS)
    page.get_by_label("Example").select_option("One fhop gate")
    page.get_by_role("button", name="Load example").click()
    expect(page.get_by_label("Job JSON")).to_contain_text('"fhop"')
    page.get_by_label("Shots per experiment").fill("40")
    shoot(page, "02-submit")
    page.get_by_role("button", name="Submit", exact=True).click()

    expect(page.get_by_role("heading", name=re.compile("^Job "))).to_be_visible()
    badge = page.locator(".heading .badge")
    expect(badge).to_have_text("DONE", timeout=DONE_WITHIN)
    histogram = page.locator("figure.histogram svg")
    expect(histogram).to_be_visible()
    expect(page.locator("figure.histogram figcaption")).to_contain_text("40 shots")
    # one fermion hopped from tweezer 0 to tweezer 1: mode 2, in every shot
    expect(page.locator("figure.histogram title")).to_have_text(["0 0 1 0 0 0 0 0: 40"])
    shoot(page, "03-job-done")

    page.get_by_role("link", name="My jobs").first.click()
    expect(page.locator("table.jobs .badge").first).to_have_text("DONE")
    shoot(page, "04-my-jobs")


def test_cancel_a_queued_job_from_my_jobs(page, live_server, alice, qudit, token):
    api = requests.Session()
    post = f"{live_server.url}/api/v2/{QUDIT}/post_job"
    job = {"experiment_0": {"instructions": [["load", [0], [5]], ["measure", [0], []]],
                            "num_wires": 1, "shots": 5}}  # fmt: skip
    for _ in range(2):
        answer = api.post(post, json={"job": json.dumps(job), "token": token}, timeout=10)
        assert answer.status_code == 200, answer.text
    log_in(page, live_server)
    expect(page.locator("#refreshing")).to_be_visible()
    shoot(page, "05-my-jobs-queued")

    row = page.locator("table.jobs tbody tr").first
    job_id = row.get_attribute("data-job-id")
    row.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Job {job_id} is cancelled.")
    cancelled = page.locator(f'tr[data-job-id="{job_id}"] .badge')
    expect(cancelled).to_have_text("CANCELLED")
    status = api.get(
        f"{live_server.url}/api/v2/{QUDIT}/get_job_status",
        params={"job_id": job_id, "token": token},
        timeout=10,
    )
    assert status.json()["detail"] == "Job cancelled by its owner."

    page.goto(f"{live_server.url}/dashboard/jobs/{job_id}/")
    expect(page.locator(".failure")).to_contain_text("Job cancelled by its owner.")
    shoot(page, "06-job-cancelled")


def test_issue_and_revoke_a_token_and_the_api_refuses_it(page, live_server, alice, storage):
    log_in(page, live_server)
    page.get_by_role("link", name="My tokens").click()
    page.get_by_label("Name").fill("lab notebook")
    page.get_by_role("button", name="Issue token").click()
    plaintext = page.locator("#new-token").inner_text().strip()
    shoot(page, "07-tokens-issued")
    jobs = f"{live_server.url}/api/v2/jobs"
    bearer = {"Authorization": f"Bearer {plaintext}"}
    assert requests.get(jobs, headers=bearer, timeout=10).status_code == 200

    row = page.locator("table.tokens tr", has_text="lab notebook")
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status").first).to_contain_text("Token revoked")
    expect(row.locator(".badge")).to_have_text("revoked")
    shoot(page, "08-tokens-revoked")
    refused = requests.get(jobs, headers=bearer, timeout=10)
    assert (refused.status_code, refused.json()["detail"]) == (401, "Invalid credentials!")


def test_a_token_log_in_the_backends_and_the_staff_page(
    page, live_server, alice, qudit, spooler, token
):
    bob = get_user_model().objects.create_user("bob", password=None)
    bob_token = issue_token(bob)[1]
    post = f"{live_server.url}/api/v2/{FERMIONS}/post_job"
    for shots in (3, 20_000):  # the second breaks max_shots: the spooler fails it
        job = {"experiment_0": {**JOB["experiment_0"], "shots": shots}}
        body = {"job": json.dumps(job), "token": bob_token}
        assert requests.post(post, json=body, timeout=10).status_code == 200

    page.goto(f"{live_server.url}/dashboard/login/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in with token").click()
    expect(page.get_by_role("heading", name="My jobs")).to_be_visible()
    expect(page.locator("table.jobs")).to_have_count(0)  # bob's jobs are not alice's

    page.get_by_role("link", name="Backends").click()
    fermions = page.locator(f'section[id="{FERMIONS}"]')
    reload_until(page, fermions.locator(".heading .badge"), "operational")
    expect(page.locator(f'section[id="{QUDIT}"] .heading .badge')).to_have_text("not operational")
    expect(fermions.get_by_role("link", name="Config JSON")).to_have_attribute(
        "href", f"/api/v2/{FERMIONS}/get_config"
    )
    shoot(page, "09-backends")

    page.get_by_role("link", name="Staff").click()
    summary = page.locator("table.summary tr", has_text=FERMIONS)
    reload_until(page, summary.locator("td").nth(3), "1")  # the spooler fails bob's 2nd job
    expect(summary.locator("td")).to_have_text([FERMIONS, "2", "1", "1", "50.0 %"])
    shoot(page, "10-staff")

    metrics = requests.get(f"{live_server.url}/metrics", timeout=10)
    assert metrics.status_code == 200
    (SCREENSHOTS / "metrics-after-browser-test.txt").write_text(metrics.text)
    assert f'qlued_jobs_failed_total{{backend="{FERMIONS}"}} 1.0' in metrics.text
