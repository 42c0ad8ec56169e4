"""`setup_demo`, what `make run` runs at each start: the demo token survives restarts."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from backends.auth import authenticate, issue_token
from backends.models import Token, token_digest


@pytest.fixture
def data_dir(settings, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


def start(data_dir: Path) -> list[str]:
    """One `make run` start, as far as tokens go: the lines setup_demo prints."""
    out = io.StringIO()
    call_command("setup_demo", "--base-path", str(data_dir / "storage"), stdout=out)
    return out.getvalue().splitlines()


def printed_token(lines: list[str]) -> str:
    [line] = [line for line in lines if line.startswith("Demo token: ")]
    return line.removeprefix("Demo token: ")


def test_the_first_start_issues_a_demo_token_kept_in_a_private_file(db, data_dir):
    lines = start(data_dir)

    token = printed_token(lines)
    token_file = data_dir / "demo-token"
    assert lines[1] == f"New demo token, now kept in {token_file} (readable by its owner only)."
    assert token_file.read_text() == token + "\n"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert authenticate(token).username == "demo"
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".")] == []  # no temp file


def test_a_restart_prints_the_same_token_and_issues_none(db, data_dir):
    first = printed_token(start(data_dir))

    lines = start(data_dir)

    assert printed_token(lines) == first
    assert lines[1] == f"Demo token kept in {data_dir / 'demo-token'} (readable by its owner only)."
    assert Token.objects.count() == 1
    assert authenticate(first).username == "demo"


def test_a_restart_keeps_every_token_it_did_not_create(db, data_dir):
    demo_token = printed_token(start(data_dir))
    demo = get_user_model().objects.get(username="demo")
    _, by_hand = issue_token(demo)  # e.g. `manage.py issue_token demo`, saved in a qiskit account
    _, alices = issue_token(get_user_model().objects.create_user("alice"))

    start(data_dir)
    start(data_dir)

    assert {authenticate(t).username for t in (demo_token, by_hand)} == {"demo"}
    assert authenticate(alices).username == "alice"
    assert Token.objects.count() == 3


def test_a_revoked_demo_token_stays_revoked_and_the_demo_gets_a_new_one(db, data_dir):
    old = printed_token(start(data_dir))
    Token.objects.filter(key=token_digest(old)).update(is_active=False)

    new = printed_token(start(data_dir))

    assert new != old
    assert Token.objects.get(key=token_digest(old)).is_active is False  # revoked, not deleted
    assert authenticate(new).username == "demo"
    assert (data_dir / "demo-token").read_text() == new + "\n"


def test_a_token_file_of_another_user_is_not_trusted(db, data_dir):
    _, alices = issue_token(get_user_model().objects.create_user("alice"))
    data_dir.mkdir(parents=True)
    (data_dir / "demo-token").write_text(alices + "\n")

    token = printed_token(start(data_dir))

    assert token != alices
    assert authenticate(token).username == "demo"
    assert authenticate(alices).username == "alice"


def test_a_token_file_readable_by_others_is_made_private_again(db, data_dir):
    start(data_dir)
    token_file = data_dir / "demo-token"
    token_file.chmod(0o644)

    start(data_dir)

    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_a_data_folder_that_cannot_hold_the_token_is_one_line(db, settings, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    settings.DATA_DIR = blocker

    with pytest.raises(CommandError) as caught:
        call_command("setup_demo", "--base-path", str(tmp_path / "storage"), stdout=io.StringIO())

    message = str(caught.value)
    assert message.startswith(f"Cannot keep the demo token in {blocker / 'demo-token'}: ")
    assert "\n" not in message


def test_the_providers_secrets_are_not_printed(db, data_dir):
    from django.contrib.auth import get_user_model

    from backends.models import StorageProviderDb

    login = {
        "mongodb_username": "lab",
        "mongodb_password": "s3cret-pw",
        "mongodb_database_url": "h",
    }
    owner = get_user_model().objects.create_user("lab")
    StorageProviderDb.objects.create(name="alqor", storage_type="mongodb", owner=owner, login=login)

    lines = start(data_dir)

    assert "s3cret-pw" not in "\n".join(lines)
    assert lines[0].startswith("Storage provider alqor (mongodb, exists): ")
