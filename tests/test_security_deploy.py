"""Production settings pass `manage.py check --deploy`, and answers carry security headers."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from tests.test_operator_gunicorn import PYTHON, ROOT, bare_env
from tests.test_operator_proxy import PROXIED, PUBLIC

PRODUCTION = {**PROXIED, "DEBUG": "false", "SECURE_SSL_REDIRECT": "true"}
PRELOAD_WARNING = "?: (security.W021) You have not set the SECURE_HSTS_PRELOAD setting to True."


def check_deploy(tmp_path, **settings: str) -> str:  # type: ignore[no-untyped-def]
    env = {**bare_env(tmp_path), "SECRET_KEY": secrets.token_urlsafe(50), **settings}
    done = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_readmes_production_settings_leave_only_the_preload_warning(tmp_path):
    output = check_deploy(tmp_path, **PRODUCTION)

    warnings = [line for line in output.splitlines() if line.startswith("?: (")]
    assert [w.split(" Without")[0] for w in warnings] == [PRELOAD_WARNING]
    assert "System check identified 1 issue" in output


def test_with_preload_too_the_deploy_check_is_clean(tmp_path):
    output = check_deploy(tmp_path, **PRODUCTION, SECURE_HSTS_PRELOAD="true")

    assert "System check identified no issues" in output


@pytest.fixture
def production(settings):  # type: ignore[no-untyped-def]
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [PUBLIC]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_SSL_REDIRECT = True
    return settings


HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}


@pytest.mark.parametrize(
    "path", ["/api/v2/backends", "/api/v2/nowhere/get_config", "/api/nothing", "/admin/login/"]
)
def test_https_answers_carry_the_security_headers(production, client, storage, path):
    response = client.get(path, HTTP_HOST=PUBLIC, HTTP_X_FORWARDED_PROTO="https")

    assert {name: response.get(name) for name in HEADERS} == HEADERS


def test_plain_http_is_redirected_to_https(production, client, db):
    response = client.get("/api/v2/backends", HTTP_HOST=PUBLIC)

    assert (response.status_code, response["Location"], response.json()) == (
        301,
        f"https://{PUBLIC}/api/v2/backends",
        {
            "job_id": "None",
            "status": "ERROR",
            "detail": "Moved permanently.",
            "error_message": "Moved permanently.",
        },
    )
