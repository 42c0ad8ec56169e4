"""The operators' commands: create_storage_provider, issue_token, upload_backend_config."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from backends.auth import authenticate
from backends.models import StorageProviderDb, Token, token_digest
from storage_providers import LocalProvider
from tests.conftest import FERMIONS_CONFIG

ROOT = Path(__file__).resolve().parent.parent
NAME_RULE = "Use lowercase letters and digits only (no spaces, no underscores)."
MONGO = {"mongodb_username": "u", "mongodb_password": "p", "mongodb_database_url": "db.example"}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    """The one-line message a command refuses `args` with."""
    with pytest.raises(CommandError) as caught:
        run(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


def create(
    name="lab", storage_type="local", login='{"base_path": "/srv/lab"}', owner="carol", *extra
):  # type: ignore[no-untyped-def]
    return (
        "create_storage_provider",
        "--name",
        name,
        "--type",
        storage_type,
        "--login",
        login,
        "--owner",
        owner,
        *extra,
    )


# ---- create_storage_provider ----------------------------------------------------------------


def test_create_storage_provider_creates_the_provider_and_its_owner(db):
    output = run(
        *create("Lab", "local", '{"base_path": "/srv/lab"}', "carol", "--description", "d")
    )

    row = StorageProviderDb.objects.get()
    assert output == "Created storage provider lab (local).\n"
    assert (row.name, row.storage_type, row.login, row.description, row.is_active) == (
        "lab",
        "local",
        {"base_path": "/srv/lab"},
        "d",
        True,
    )
    assert row.owner.username == "carol"
    assert not row.owner.has_usable_password()


def test_create_storage_provider_reuses_an_existing_owner(user):
    run(*create(owner="alice"))

    assert StorageProviderDb.objects.get().owner == user
    assert get_user_model().objects.count() == 1


def test_create_storage_provider_can_create_it_switched_off(db):
    run(*create("lab", "local", '{"base_path": "/x"}', "carol", "--inactive"))

    assert StorageProviderDb.objects.get().is_active is False


def test_create_storage_provider_accepts_a_mongodb_login(db):
    run(*create("mongo", "mongodb", json.dumps(MONGO)))

    assert StorageProviderDb.objects.get().login == MONGO


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (create(login="{not json"), "--login is not valid JSON."),
        (create(name="bad name"), f"name: {NAME_RULE}"),
        (create(name="lab_2"), f"name: {NAME_RULE}"),
        (
            create(login='{"x": 1}'),
            "login: Invalid local login: 'base_path' is missing; 'x' is not expected.",
        ),
        (create(login="[1]"), "login: The login must be a JSON object."),
        (
            create(storage_type="mongodb", login='{"base_path": "/x"}'),
            "login: Invalid mongodb login: 'base_path' is not expected; "
            "'mongodb_database_url' is missing; 'mongodb_password' is missing; "
            "'mongodb_username' is missing.",
        ),
    ],
)
def test_create_storage_provider_refuses_bad_input_in_one_line(db, args, message):
    assert refused(*args) == message
    assert not StorageProviderDb.objects.exists()
    assert not get_user_model().objects.exists()  # no owner left behind either


def test_create_storage_provider_refuses_a_duplicate_name_whatever_its_case(db):
    run(*create("lab"))

    message = refused(*create("LAB"))

    assert message == "name: Storage provider with this Name already exists."
    assert StorageProviderDb.objects.count() == 1


def test_create_storage_provider_refuses_an_unknown_type(db):
    assert "invalid choice: 'ftp'" in refused(*create(storage_type="ftp"))


# ---- the same, as an operator runs it -------------------------------------------------------


@pytest.fixture(scope="module")
def manage(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Run `python manage.py ...` as a real process on a migrated database of its own."""
    home = tmp_path_factory.mktemp("operator")
    env = {
        **os.environ,
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "qlued.settings",
        "QLUED_DATA_DIR": str(home),
        "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}",
    }
    env.pop("SECRET_KEY", None)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    migrated = manage("migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    return manage


def test_a_refused_command_exits_1_with_one_line_and_no_traceback(manage):
    done = manage("create_storage_provider", *create(name="bad name")[1:])

    assert done.returncode == 1
    assert done.stderr == f"CommandError: name: {NAME_RULE}\n"
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["create_storage_provider", "--name", "lab"],
            "the following arguments are required: --type, --login, --owner",
        ),
        (["issue_token"], "the following arguments are required: username"),
        (
            ["upload_backend_config", "config.json"],
            "the following arguments are required: --provider",
        ),
        (
            ["run_spooler", "alqor", "--lease-seconds", "soon"],
            "argument --lease-seconds: invalid float value: 'soon'",
        ),
    ],
)
def test_wrong_flags_are_one_line_and_exit_1_not_a_usage_page(manage, args, message):
    done = manage(*args)

    assert done.returncode == 1
    assert done.stderr == f"CommandError: Error: {message}\n"
    assert done.stdout == ""


def test_an_accepted_command_then_a_duplicate_as_real_processes(manage, tmp_path):
    args = create("oplab", "local", json.dumps({"base_path": str(tmp_path)}))[1:]

    first = manage("create_storage_provider", *args)
    second = manage("create_storage_provider", *args)

    assert (first.returncode, first.stdout, first.stderr) == (
        0,
        "Created storage provider oplab (local).\n",
        "",
    )
    assert (second.returncode, second.stderr) == (
        1,
        "CommandError: name: Storage provider with this Name already exists.\n",
    )


# ---- issue_token ----------------------------------------------------------------------------


def test_issue_token_prints_a_token_alone_on_the_last_line_that_authenticates(db):
    output = run("issue_token", "erin")

    plaintext = output.splitlines()[-1]
    assert output == f"Token for erin (shown once, store it safely):\n{plaintext}\n"
    assert len(plaintext) >= 40
    assert plaintext.strip() == plaintext and " " not in plaintext
    caller = authenticate(plaintext)
    assert caller.username == "erin"
    assert Token.objects.get().key == token_digest(plaintext)


def test_issue_token_gives_an_existing_user_another_token(user):
    first = run("issue_token", "alice").splitlines()[-1]
    second = run("issue_token", "alice").splitlines()[-1]

    assert first != second
    assert authenticate(first).user_id == authenticate(second).user_id == user.pk
    assert get_user_model().objects.count() == 1


def test_issue_token_keeps_only_the_digest(db):
    plaintext = run("issue_token", "erin").splitlines()[-1]

    assert not Token.objects.filter(key=plaintext).exists()
    assert plaintext not in json.dumps(list(Token.objects.values()), default=str)


@pytest.mark.parametrize("username", ["", "   ", "x" * 151])
def test_issue_token_refuses_an_impossible_username(db, username):
    assert refused("issue_token", username) == "USERNAME must be 1 to 150 characters."
    assert not Token.objects.exists()


def test_an_issued_token_works_on_the_api(client, storage):
    plaintext = run("issue_token", "erin").splitlines()[-1]

    response = client.post(
        "/api/v2/alqor_fermions_simulator/post_job",
        {
            "job": json.dumps({"e": {"instructions": [], "num_wires": 1, "shots": 1}}),
            "token": plaintext,
        },
        content_type="application/json",
    )

    assert response.status_code == 200


# ---- upload_backend_config ------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(content: object, name: str = "config.json") -> str:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    return write


def test_upload_backend_config_writes_the_config_into_the_providers_folder(
    client, local_provider, storage_path, config_file
):
    config = {**copy.deepcopy(FERMIONS_CONFIG), "display_name": "tweezers"}

    output = run("upload_backend_config", "--provider", "alqor", config_file(config))

    assert output == "Uploaded config of tweezers to alqor.\n"
    stored = json.loads((storage_path / "backends/configs/tweezers.json").read_text())
    assert stored == {
        **config,
        "pending_jobs": None,
        "status_msg": None,
        "last_queue_check": None,
        "sign": False,
        "kid": None,
    }
    served = client.get("/api/v2/alqor_tweezers_simulator/get_config")
    assert (served.status_code, served.json()["backend_name"]) == (200, "alqor_tweezers_simulator")


def test_upload_backend_config_replaces_an_older_config(local_provider, storage_path, config_file):
    run("upload_backend_config", "--provider", "alqor", config_file(FERMIONS_CONFIG))
    newer = {**copy.deepcopy(FERMIONS_CONFIG), "version": "0.2"}

    run("upload_backend_config", "--provider", "alqor", config_file(newer, "newer.json"))

    stored = json.loads((storage_path / "backends/configs/fermions.json").read_text())
    assert stored["version"] == "0.2"


def stamp_as_served(storage_path: Path) -> dict:
    """The fermions config as a spooler leaves it: stamped a moment ago, three jobs waiting."""
    served = {
        **copy.deepcopy(FERMIONS_CONFIG),
        "last_queue_check": datetime.now(UTC).isoformat(),
        "pending_jobs": 3,
        "status_msg": "Cooling down until noon.",
    }
    LocalProvider("alqor", storage_path).upload_config("fermions", served)
    return json.loads((storage_path / "backends/configs/fermions.json").read_text())


def backend_status(client, backend: str) -> dict:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v2/{backend}/get_backend_status")
    assert response.status_code == 200
    body = response.json()
    return {key: body[key] for key in ("operational", "pending_jobs", "status_msg")}


def test_a_config_copied_from_a_served_one_is_not_operational_until_a_spooler_serves_it(
    client, local_provider, storage_path, config_file
):
    served = stamp_as_served(storage_path)
    assert backend_status(client, "alqor_fermions_simulator")["operational"] is True

    run(
        "upload_backend_config",
        "--provider",
        "alqor",
        config_file({**served, "display_name": "copy"}),
    )

    stored = json.loads((storage_path / "backends/configs/copy.json").read_text())
    assert (stored["last_queue_check"], stored["pending_jobs"]) == (None, None)
    assert backend_status(client, "alqor_copy_simulator") == {
        "operational": False,
        "pending_jobs": 0,
        "status_msg": "Cooling down until noon.",  # the operator's message, kept
    }


def test_keep_spooler_fields_uploads_them_as_given(
    client, local_provider, storage_path, config_file
):
    served = stamp_as_served(storage_path)
    path = config_file({**served, "display_name": "copy"})

    run("upload_backend_config", "--provider", "alqor", "--keep-spooler-fields", path)

    stored = json.loads((storage_path / "backends/configs/copy.json").read_text())
    assert datetime.fromisoformat(stored["last_queue_check"]) == datetime.fromisoformat(
        served["last_queue_check"]
    )
    assert stored["pending_jobs"] == 3
    assert backend_status(client, "alqor_copy_simulator") == {
        "operational": True,
        "pending_jobs": 3,
        "status_msg": "Cooling down until noon.",
    }


def without(key: str) -> dict:
    return {k: v for k, v in FERMIONS_CONFIG.items() if k != key}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (without("max_shots"), "Invalid backend config: max_shots: Field required."),
        (
            {**FERMIONS_CONFIG, "wire_order": "diagonal"},
            "Invalid backend config: wire_order: Input should be 'sequential' or 'interleaved'.",
        ),
        (
            {**FERMIONS_CONFIG, "display_name": "Bad Name"},
            "Invalid backend config: display_name: String should match pattern '^[a-z0-9]+$'.",
        ),
        (
            {**FERMIONS_CONFIG, "display_name": "../escape"},
            "Invalid backend config: display_name: String should match pattern '^[a-z0-9]+$'.",
        ),
        (
            {**FERMIONS_CONFIG, "gates": [{"name": "fhop"}]},
            "Invalid backend config: gates.0.parameters: Field required.",
        ),
        ("[1, 2]", None),
        ("{not json", "{path} is not valid JSON."),
        ("", "{path} is not valid JSON."),
    ],
)
def test_upload_backend_config_refuses_a_bad_file_in_one_line(
    local_provider, storage_path, config_file, content, message
):
    path = config_file(content)

    got = refused("upload_backend_config", "--provider", "alqor", path)

    if message is None:
        assert got.startswith("Invalid backend config: ")
    else:
        assert got == message.format(path=path)
    assert not (storage_path / "backends").exists()


def test_upload_backend_config_refuses_a_missing_file(local_provider, tmp_path):
    path = tmp_path / "nowhere.json"

    message = refused("upload_backend_config", "--provider", "alqor", str(path))

    assert message == f"Cannot read {path}: No such file or directory."


def test_upload_backend_config_refuses_an_unknown_provider(db, config_file):
    message = refused("upload_backend_config", "--provider", "nobody", config_file(FERMIONS_CONFIG))

    assert message == "No storage provider named 'nobody'."


def test_upload_backend_config_refuses_a_type_this_build_lacks(
    user, config_file, dropbox_not_built
):
    StorageProviderDb.objects.create(
        name="box",
        storage_type="dropbox",
        owner=user,
        login={"app_key": "k", "app_secret": "s", "refresh_token": "r"},
    )

    message = refused("upload_backend_config", "--provider", "box", config_file(FERMIONS_CONFIG))

    assert message == "Storage type dropbox is not available."


def test_upload_backend_config_says_when_the_folder_cannot_be_written(user, tmp_path, config_file):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    StorageProviderDb.objects.create(
        name="alqor", storage_type="local", owner=user, login={"base_path": str(blocker)}
    )

    message = refused("upload_backend_config", "--provider", "alqor", config_file(FERMIONS_CONFIG))

    assert message.startswith("Could not write to alqor: ")
