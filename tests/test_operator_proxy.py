"""Behind a reverse proxy that terminates TLS (README, "Behind a TLS proxy").

The proxy talks plain HTTP to gunicorn and says `X-Forwarded-Proto: https`. With the
settings README gives, the service then treats the request as secure: configs' `url`
use https, answers carry HSTS, cookies are Secure, and admin forms posted from the
public origin pass the CSRF check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client

from tests.test_operator_gunicorn import Server, start_server, stop

PUBLIC = "qlued.example.org"
PROXIED = {  # README's settings for a service behind a TLS proxy
    "ALLOWED_HOSTS": PUBLIC,
    "CSRF_TRUSTED_ORIGINS": f"https://{PUBLIC}",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
}
HSTS = "max-age=31536000; includeSubDomains"
CONFIG = "/api/v2/alqor_fermions_simulator/get_config"


@pytest.fixture
def proxied(settings):  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = [PUBLIC, "127.0.0.1"]
    settings.CSRF_TRUSTED_ORIGINS = [f"https://{PUBLIC}"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    return settings


def test_a_request_the_proxy_marks_https_gets_https_urls_and_hsts(proxied, client, storage):
    response = client.get(CONFIG, HTTP_HOST=PUBLIC, HTTP_X_FORWARDED_PROTO="https")

    assert response.json()["url"] == f"https://{PUBLIC}/api/v2/alqor_fermions_simulator/"
    assert response["Strict-Transport-Security"] == HSTS


def test_a_plain_http_request_gets_http_urls_and_no_hsts(proxied, client, storage):
    response = client.get(CONFIG, HTTP_HOST=PUBLIC)

    assert response.json()["url"] == f"http://{PUBLIC}/api/v2/alqor_fermions_simulator/"
    assert "Strict-Transport-Security" not in response


def test_without_the_setting_the_header_is_not_believed(settings, client, storage):
    settings.ALLOWED_HOSTS = [PUBLIC]

    response = client.get(CONFIG, HTTP_HOST=PUBLIC, HTTP_X_FORWARDED_PROTO="https")

    assert response.json()["url"] == f"http://{PUBLIC}/api/v2/alqor_fermions_simulator/"


def test_base_url_wins_over_what_the_request_says(proxied, client, storage):
    proxied.BASE_URL = f"https://{PUBLIC}/qlued"

    response = client.get(CONFIG, HTTP_HOST="127.0.0.1")

    assert response.json()["url"] == f"https://{PUBLIC}/qlued/api/v2/alqor_fermions_simulator/"


def test_cookies_are_secure_and_the_public_origin_may_post_admin_forms(proxied, db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password="a long admin password")
    browser = Client(enforce_csrf_checks=True, HTTP_X_FORWARDED_PROTO="https")
    # The proxy forwards to 127.0.0.1, the browser posts from the public origin.
    page = browser.get("/admin/login/", HTTP_HOST="127.0.0.1")
    csrf = page.cookies["csrftoken"]
    form = {"username": "root", "password": "a long admin password", "next": "/admin/"}

    logged_in = browser.post(
        "/admin/login/",
        {**form, "csrfmiddlewaretoken": csrf.value},
        HTTP_HOST="127.0.0.1",
        HTTP_ORIGIN=f"https://{PUBLIC}",
    )

    assert csrf["secure"] is True
    assert logged_in.status_code == 302
    assert logged_in.cookies["sessionid"]["secure"] is True
    proxied.CSRF_TRUSTED_ORIGINS = []
    refused = Client(enforce_csrf_checks=True, HTTP_X_FORWARDED_PROTO="https")
    again = refused.get("/admin/login/", HTTP_HOST="127.0.0.1").cookies["csrftoken"].value
    assert (
        refused.post(
            "/admin/login/",
            {**form, "csrfmiddlewaretoken": again},
            HTTP_HOST="127.0.0.1",
            HTTP_ORIGIN=f"https://{PUBLIC}",
        ).status_code
        == 403
    )


# ---- the same under gunicorn, as README shows it ------------------------------------------------


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A proxy on another machine: gunicorn does not trust its headers itself
    # (forwarded_allow_ips), so only the service's setting makes the request secure.
    home = tmp_path_factory.mktemp("proxied")
    running = start_server(home, "--forwarded-allow-ips", "192.0.2.10", **PROXIED)
    yield running
    stop(running)


def test_readme_example_the_headers_behind_a_tls_proxy(behind_proxy):
    answer = behind_proxy.get(CONFIG, f"Host: {PUBLIC}", "X-Forwarded-Proto: https")

    assert answer.status == 200
    assert answer.json()["url"] == f"https://{PUBLIC}/api/v2/alqor_fermions_simulator/"  # type: ignore[index]
    shown = {name: answer.headers[name] for name in README_HEADERS}
    assert shown == README_HEADERS


def test_readme_example_without_the_proxys_header_there_is_no_hsts(behind_proxy):
    answer = behind_proxy.get(CONFIG, f"Host: {PUBLIC}")

    assert answer.json()["url"] == f"http://{PUBLIC}/api/v2/alqor_fermions_simulator/"  # type: ignore[index]
    assert "strict-transport-security" not in answer.headers


def test_readme_example_an_unknown_host_is_refused_in_json(behind_proxy):
    answer = behind_proxy.get(CONFIG, "Host: elsewhere.example", "X-Forwarded-Proto: https")

    assert (answer.status, answer.json()) == (
        400,
        {
            "job_id": "None",
            "status": "ERROR",
            "detail": "Bad request.",
            "error_message": "Bad request.",
        },
    )


README_HEADERS = {
    "content-type": "application/json",
    "strict-transport-security": HSTS,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "x-frame-options": "DENY",
}


def test_readme_shows_these_headers():
    from tests.test_operator_gunicorn import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Behind a TLS proxy") :]
    for name, value in README_HEADERS.items():
        pattern = re.escape(f"{name}: {value}")
        assert re.search(pattern, section, re.IGNORECASE), f"{name}: {value}"
