"""Settings as a new operator meets them: `.env` from set-up, and one line for a bad value.

Every command runs as a real process in a bare environment (PATH and HOME only, like
`env -i`), with its own data folder and its own `.env` file (QLUED_ENV_FILE), so the
checkout's own `.env` never leaks in.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
NO_KEY = (
    "ImproperlyConfigured: SECRET_KEY is not set. Run `make setup` (it writes one into .env), "
    "set it in the environment, or set DEBUG=true for development.\n"
)
LAB_COMMANDS = [
    [
        "create_storage_provider",
        "--name",
        "mylab",
        "--type",
        "local",
        "--login",
        '{"base_path": "/srv/qlued"}',
        "--owner",
        "alice",
    ],
    ["issue_token", "alice"],
    ["upload_backend_config", "--provider", "mylab", "config.json"],
    ["run_spooler", "mylab", "--backends", "fermions,singlequdit"],
    ["migrate"],
    ["createsuperuser"],
    ["help"],
]


@pytest.fixture
def operator(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run a command of the checkout as an operator's bare shell would, with a given .env."""
    env_file = tmp_path / "lab.env"
    env_file.write_text("")

    def run(command: list[str], env_text: str = "", **env: str) -> subprocess.CompletedProcess:
        env_file.write_text(env_text)
        bare = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "QLUED_ENV_FILE": str(env_file),
            "QLUED_DATA_DIR": str(tmp_path / "data"),
            **env,
        }
        return subprocess.run(
            command,
            cwd=ROOT,
            env=bare,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def manage(*args: str) -> list[str]:
    return [PYTHON, "manage.py", *args]


@pytest.mark.parametrize("args", LAB_COMMANDS, ids=lambda args: args[0])
def test_every_command_without_a_secret_key_is_one_line_and_exit_1(operator, args):
    done = operator(manage(*args))

    assert (done.returncode, done.stdout, done.stderr) == (1, "", NO_KEY)


@pytest.mark.parametrize(
    ("env_text", "line"),
    [
        ("SECRET_KEY=k\nDEBUG=maybe\n", "DEBUG must be true or false."),
        ("SECRET_KEY=\n", NO_KEY.removeprefix("ImproperlyConfigured: ").rstrip()),
        ("SECRET_KEY=k\nDATABASE_URL=mysqlx://db\n", None),
        ("SECRET_KEY=k\nT_TIMEOUT=soon\n", "T_TIMEOUT must be a number."),
        ("SECRET_KEY=k\nCACHE_SECONDS=-1\n", "CACHE_SECONDS must not be negative."),
        ("SECRET_KEY=k\nMAX_REQUEST_BYTES=10MB\n", "MAX_REQUEST_BYTES must be a number."),
        (
            "SECRET_KEY=k\nLOG_LEVEL=loud\n",
            "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL.",
        ),
        (
            "SECRET_KEY=k\nBASE_URL=qlued.example.org\n",
            "BASE_URL must start with http:// or https:// and name a host, "
            "not 'qlued.example.org'.",
        ),
        (
            "SECRET_KEY=k\nCSRF_TRUSTED_ORIGINS=qlued.example.org\n",
            "CSRF_TRUSTED_ORIGINS must start with http:// or https:// and name a host, "
            "not 'qlued.example.org'.",
        ),
        (
            "SECRET_KEY=k\nDEFAULT_STORAGE=My_Lab\n",
            "DEFAULT_STORAGE must be a provider name: lowercase letters and digits.",
        ),
        (
            "SECRET_KEY=k\nSECURE_PROXY_SSL_HEADER=X-Forwarded-Proto: https\n",
            "SECURE_PROXY_SSL_HEADER must be a header and its value, "
            "e.g. HTTP_X_FORWARDED_PROTO,https.",
        ),
        ("SECRET_KEY=k\nSECURE_HSTS_SECONDS=a year\n", "SECURE_HSTS_SECONDS must be a number."),
        (
            "SECRET_KEY=k\nCSRF_COOKIE_SECURE=yes please\n",
            "CSRF_COOKIE_SECURE must be true or false.",
        ),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_1(operator, env_text, line):
    done = operator(manage("issue_token", "alice"), env_text)

    if line is None:  # the database URL message lists what is accepted
        line = (
            "DATABASE_URL is not a database URL: use sqlite:///PATH or "
            "postgres://USER:PASSWORD@HOST:PORT/NAME."
        )
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"ImproperlyConfigured: {line}\n")


def test_an_unreachable_database_is_one_line_and_exit_1(operator):
    done = operator(
        manage("migrate"), "SECRET_KEY=k\nDATABASE_URL=postgres://nobody@127.0.0.1:9/none\n"
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("OperationalError: connection failed")
    assert done.stderr.endswith("(check DATABASE_URL; a new database needs `manage.py migrate`)\n")


def test_a_database_never_migrated_says_so_in_one_line(operator):
    done = operator(manage("issue_token", "alice"), "SECRET_KEY=k\n")

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "OperationalError: no such table: auth_user "
        "(check DATABASE_URL; a new database needs `manage.py migrate`)\n"
    )


def test_an_env_file_that_is_not_there_is_one_line(operator, tmp_path):
    done = operator(manage("check"), QLUED_ENV_FILE=str(tmp_path / "nowhere.env"))

    assert (done.returncode, done.stderr) == (
        1,
        f"ImproperlyConfigured: QLUED_ENV_FILE names no file: {tmp_path / 'nowhere.env'}.\n",
    )


def test_the_environment_wins_over_the_env_file(operator):
    done = operator(manage("check"), "SECRET_KEY=k\nDEBUG=maybe\n", DEBUG="false")

    assert (done.returncode, done.stderr) == (0, "")


# ---- gunicorn -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_text", "line"),
    [
        ("", NO_KEY),
        ("SECRET_KEY=k\nT_TIMEOUT=soon\n", "ImproperlyConfigured: T_TIMEOUT must be a number.\n"),
    ],
)
def test_gunicorn_with_a_bad_setting_is_one_line_and_exit_1(operator, env_text, line):
    command = [GUNICORN, "qlued.wsgi", "-c", "qlued/gunicorn_conf.py", "-b", "127.0.0.1:0"]

    done = operator(command, env_text)

    assert (done.returncode, done.stdout, done.stderr) == (1, "", line)


# ---- make setup writes .env -----------------------------------------------------------------


def make_env(folder: Path) -> subprocess.CompletedProcess:
    """The Makefile's `.env` target (what `make setup` runs last) in `folder`."""
    return subprocess.run(
        [
            shutil.which("make") or "make",
            "-s",
            "-C",
            str(folder),
            "-f",
            str(ROOT / "Makefile"),
            ".env",
            f"PYTHON={PYTHON}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_setup_writes_a_private_env_file_with_a_generated_secret_key(tmp_path):
    assert make_env(tmp_path).returncode == 0

    env_file = tmp_path / ".env"
    key_line = env_file.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert key_line.startswith("SECRET_KEY=") and key_line.endswith("\n")
    assert len(key_line.strip()) - len("SECRET_KEY=") >= 50
    assert key_line.count("\n") == 1
    assert not (tmp_path / ".env.tmp").exists()


def test_make_setup_never_rewrites_an_env_file_that_exists(tmp_path):
    make_env(tmp_path)
    first = (tmp_path / ".env").read_text()
    own = tmp_path / "own"
    own.mkdir()
    (own / ".env").write_text("SECRET_KEY=mine\nDEBUG=false\n")

    again = make_env(tmp_path)
    other = make_env(own)

    assert (again.returncode, (tmp_path / ".env").read_text()) == (0, first)
    assert (other.returncode, (own / ".env").read_text()) == (0, "SECRET_KEY=mine\nDEBUG=false\n")


def test_a_command_works_with_nothing_but_the_written_env_file(operator, tmp_path):
    make_env(tmp_path)

    done = operator(manage("migrate", "-v0"), (tmp_path / ".env").read_text())
    issued = operator(manage("issue_token", "alice"), (tmp_path / ".env").read_text())

    assert (done.returncode, done.stderr) == (0, "")
    assert (issued.returncode, issued.stderr) == (0, "")
    assert issued.stdout.startswith("Token for alice (shown once, store it safely):\n")


def test_the_checkout_ignores_its_env_file_in_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=ROOT, capture_output=True, timeout=30
    )

    assert ignored.returncode == 0
