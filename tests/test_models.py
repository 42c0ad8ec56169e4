"""The models of SPEC §5 and the operators' admin: validation, token digests, the ledger."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from backends.auth import issue_token
from backends.models import Job, StorageProviderDb, Token
from backends.services import create_storage_provider

LOCAL = {"base_path": "/srv/qlued"}
MONGO = {
    "mongodb_username": "lab",
    "mongodb_password": "mongo-pw-XYZ",
    "mongodb_database_url": "cluster0.example.mongodb.net",
}
DROPBOX = {"app_key": "key-1", "app_secret": "dropbox-secret-XYZ", "refresh_token": "refresh-XYZ"}
NAME_RULE = "Use lowercase letters and digits only (no spaces, no underscores)."


def provider(owner, name="alqor", storage_type="local", login=None) -> StorageProviderDb:  # type: ignore[no-untyped-def]
    return StorageProviderDb(
        name=name, storage_type=storage_type, owner=owner, login=LOCAL if login is None else login
    )


def errors_of(row: StorageProviderDb) -> dict:
    with pytest.raises(ValidationError) as caught:
        row.full_clean()
    return caught.value.message_dict


# ---- StorageProviderDb.clean ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("alqor", "alqor"), ("Alqor", "alqor"), ("ALQOR2", "alqor2"), ("  lab7 ", "lab7")],
)
def test_a_typed_name_is_lower_cased_before_it_is_checked(user, typed, stored):
    row = provider(user, name=typed)

    row.full_clean()
    row.save()

    assert StorageProviderDb.objects.get().name == stored


@pytest.mark.parametrize(
    "name", ["al qor", "al_qor", "al-qor", "al.qor", "älqor", "alqor!", "../x", "al\x00qor", "Ünï"]
)
def test_a_name_outside_the_rule_is_refused_once(user, name):
    assert errors_of(provider(user, name=name)) == {"name": [NAME_RULE]}


def test_an_empty_name_is_refused(user):
    assert errors_of(provider(user, name="  ")) == {
        "name": ["This field cannot be blank.", NAME_RULE]
    }


def test_a_name_that_differs_only_in_case_is_a_duplicate(user):
    provider(user, name="alqor").save()

    errors = errors_of(provider(user, name="ALQOR"))

    assert errors == {"name": ["Storage provider with this Name already exists."]}


@pytest.mark.parametrize(
    ("storage_type", "login"),
    [
        ("local", {"base_path": "/srv/qlued"}),
        ("local", {"base_path": "relative/folder"}),
        ("mongodb", MONGO),
        ("mongodb", {**MONGO, "mongodb_database_url": "mongodb://db.lab:27017"}),
        ("mongodb", {**MONGO, "mongodb_database_url": "mongodb+srv://cluster0.example.net"}),
        ("mongodb", {**MONGO, "mongodb_database_url": "mongodb://a:1,b:2/?replicaSet=rs0"}),
        ("dropbox", DROPBOX),
    ],
)
def test_a_login_that_fits_its_type_is_accepted(user, storage_type, login):
    provider(user, storage_type=storage_type, login=login).full_clean()


@pytest.mark.parametrize(
    ("storage_type", "login", "message"),
    [
        ("local", {}, "Invalid local login: 'base_path' is missing."),
        ("local", {"base_path": 5}, "Invalid local login: 'base_path' must be a string."),
        (
            "local",
            {"base_path": "/x", "password": "p"},
            "Invalid local login: 'password' is not expected.",
        ),
        ("local", ["base_path"], "The login must be a JSON object."),
        ("local", "/srv/qlued", "The login must be a JSON object."),
        (
            "mongodb",
            {k: v for k, v in MONGO.items() if k != "mongodb_password"},
            "Invalid mongodb login: 'mongodb_password' is missing.",
        ),
        (
            "mongodb",
            {"mongodb_username": "u"},
            "Invalid mongodb login: 'mongodb_database_url' is missing; "
            "'mongodb_password' is missing.",
        ),
        (
            "mongodb",
            {**MONGO, "base_path": "/x"},
            "Invalid mongodb login: 'base_path' is not expected.",
        ),
        ("mongodb", LOCAL, None),
        (
            "dropbox",
            {"app_key": "k", "app_secret": "s"},
            "Invalid dropbox login: 'refresh_token' is missing.",
        ),
        (
            "dropbox",
            {**DROPBOX, "access_token": "a"},
            "Invalid dropbox login: 'access_token' is not expected.",
        ),
    ],
)
def test_a_login_that_does_not_fit_its_type_is_refused(user, storage_type, login, message):
    errors = errors_of(provider(user, storage_type=storage_type, login=login))

    assert set(errors) == {"login"}
    if message is not None:
        assert message in errors["login"]


def test_a_login_error_never_repeats_a_secret(user):
    login = {"mongodb_username": "u", "mongodb_password": 12345678, "mongodb_database_url": "x"}

    errors = errors_of(provider(user, storage_type="mongodb", login=login))

    assert "12345678" not in json.dumps(errors)


def test_an_unknown_storage_type_is_refused(user):
    errors = errors_of(provider(user, storage_type="ftp"))

    assert set(errors) == {"storage_type", "login"}


def test_the_database_refuses_an_unknown_storage_type(user):
    with pytest.raises(IntegrityError), transaction.atomic():
        provider(user, storage_type="ftp").save()


def test_a_provider_reads_as_its_name_and_type(user):
    assert str(provider(user, storage_type="local")) == "alqor (local)"


@pytest.mark.parametrize(
    ("storage_type", "login", "masked"),
    [
        ("local", LOCAL, LOCAL),
        ("mongodb", MONGO, {**MONGO, "mongodb_password": "********"}),
        (
            "dropbox",
            DROPBOX,
            {"app_key": "key-1", "app_secret": "********", "refresh_token": "********"},
        ),
    ],
)
def test_masked_login_hides_exactly_the_secrets(user, storage_type, login, masked):
    assert provider(user, storage_type=storage_type, login=login).masked_login == masked


def test_create_storage_provider_validates_like_the_admin(user):
    row = create_storage_provider(name="Lab2", storage_type="local", login=LOCAL, owner=user)

    with pytest.raises(ValidationError) as caught:
        create_storage_provider(name="lab2", storage_type="local", login=LOCAL, owner=user)

    assert row.name == "lab2"
    assert "name" in caught.value.message_dict


# ---- tokens ---------------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_sha256_digest(user):
    token, plaintext = issue_token(user)

    assert Token.objects.get().key == hashlib.sha256(plaintext.encode()).hexdigest()
    assert token.key != plaintext


def test_the_plaintext_token_appears_nowhere_in_the_database(user, local_provider):
    _, plaintext = issue_token(user, local_provider)
    dump = io.StringIO()

    call_command("dumpdata", stdout=dump)

    assert plaintext not in dump.getvalue()
    assert hashlib.sha256(plaintext.encode()).hexdigest() in dump.getvalue()


def test_every_issued_token_is_different_and_long(user):
    plaintexts = {issue_token(user)[1] for _ in range(20)}

    assert len(plaintexts) == 20
    assert min(len(p) for p in plaintexts) >= 40


def test_a_token_reads_without_revealing_more_than_a_digest_prefix(user):
    token, plaintext = issue_token(user)

    assert str(token) == f"token {token.key[:8]}… of alice"
    assert plaintext not in str(token)


# ---- the ledger -----------------------------------------------------------------------------


def test_each_posted_job_gets_one_ledger_row_with_its_owner(client, storage, token, user):
    before = timezone.now()
    job = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})
    ids = [
        client.post(
            "/api/v2/alqor_fermions_simulator/post_job",
            {"job": job, "token": token},
            content_type="application/json",
        ).json()["job_id"]
        for _ in range(3)
    ]

    rows = list(Job.objects.order_by("job_id").values())
    assert [r["job_id"] for r in rows] == sorted(ids)
    for row in rows:
        assert row["storage_provider_id"] == StorageProviderDb.objects.get(name="alqor").pk
        assert row["display_name"] == "fermions"
        assert row["owner_id"] == user.pk
        assert before <= row["submitted_at"] <= timezone.now()


def test_a_job_id_is_unique_per_provider(user, local_provider):
    Job.objects.create(
        job_id="a" * 24, storage_provider=local_provider, display_name="x", owner=user
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(
            job_id="a" * 24, storage_provider=local_provider, display_name="y", owner=user
        )


def test_record_stores_the_row_create_would(user, local_provider):
    """post_job's INSERT, compiled once: every field and the new id as `create` has them."""
    values = {
        "storage_provider_id": local_provider.pk,
        "display_name": "fermions",
        "owner_id": user.pk,
        "backend_name": "alqor_fermions_simulator",
        "status": "QUEUED",
        "shots": 2**63 - 1,
        "experiments": 3,
    }
    before = timezone.now()
    row = Job.objects.record(job_id="b" * 24, **values)
    twin = Job.objects.create(job_id="c" * 24, **values)

    stored, created = (Job.objects.values().get(pk=r.pk) for r in (row, twin))
    assert before <= stored["submitted_at"] <= created["submitted_at"]
    same = {"id": row.pk, "job_id": "b" * 24, "submitted_at": stored["submitted_at"]}
    assert stored == {**created, **same}
    assert (stored["started_at"], stored["cancel_requested_at"]) == (None, None)
    assert twin.pk == row.pk + 1
    row.delete()  # a saved instance, as create returns
    assert not Job.objects.filter(job_id="b" * 24).exists()


def test_record_refuses_an_id_the_provider_has_recorded(user, local_provider):
    values = {"storage_provider_id": local_provider.pk, "display_name": "x", "owner_id": user.pk}
    Job.objects.record(job_id="a" * 24, **values)

    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.record(job_id="a" * 24, **values)
    assert Job.objects.count() == 1


def test_a_post_whose_fresh_id_is_recorded_already_draws_another(
    client, storage, token, user, local_provider, monkeypatch
):
    taken = "0123456789abcdef01234567"
    Job.objects.create(
        job_id=taken, storage_provider=local_provider, display_name="fermions", owner=user
    )
    draws = iter([taken])
    drawn = type(storage).new_job_id
    monkeypatch.setattr(
        type(storage), "new_job_id", lambda self, *a: next(draws, None) or drawn(self, *a)
    )
    job = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})

    answer = client.post(
        "/api/v2/alqor_fermions_simulator/post_job",
        {"job": job, "token": token},
        content_type="application/json",
    )

    assert answer.status_code == 200
    assert answer.json()["job_id"] not in (taken, "None")
    assert Job.objects.filter(job_id=answer.json()["job_id"]).count() == 1


def test_a_ledger_row_reads_as_its_job(user, local_provider):
    row = Job.objects.create(
        job_id="a" * 24, storage_provider=local_provider, display_name="fermions", owner=user
    )

    assert str(row) == f"job {'a' * 24} on {local_provider.pk}/fermions"


# ---- the admin ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quick_passwords(settings):  # type: ignore[no-untyped-def]
    """pytest-django's admin_user has a password; hashing it properly takes most of a second."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


CHANGELISTS = [
    "/admin/backends/storageproviderdb/",
    "/admin/backends/token/",
    "/admin/backends/job/",
]


@pytest.fixture
def filled(admin_user, tmp_path):  # type: ignore[no-untyped-def]
    """A provider of every type, a token and a ledger row; what the secrets are."""
    rows = [
        StorageProviderDb.objects.create(
            name="alqor", storage_type="local", owner=admin_user, login={"base_path": str(tmp_path)}
        ),
        StorageProviderDb.objects.create(
            name="mongo", storage_type="mongodb", owner=admin_user, login=MONGO
        ),
        StorageProviderDb.objects.create(
            name="drop", storage_type="dropbox", owner=admin_user, login=DROPBOX
        ),
    ]
    _, plaintext = issue_token(admin_user, rows[0])
    Job.objects.create(
        job_id="65a000000000000000000001",
        storage_provider=rows[0],
        display_name="fermions",
        owner=admin_user,
    )
    return ["mongo-pw-XYZ", "dropbox-secret-XYZ", "refresh-XYZ", plaintext]


@pytest.mark.parametrize("url", CHANGELISTS)
def test_changelists_render_for_a_superuser_without_secrets(admin_client, filled, url):
    response = admin_client.get(url)

    page = response.content.decode()
    assert response.status_code == 200
    assert [secret for secret in filled if secret in page] == []


def test_the_provider_changelist_shows_masked_logins(admin_client, filled):
    page = admin_client.get("/admin/backends/storageproviderdb/").content.decode()

    assert "********" in page
    assert "cluster0.example.mongodb.net" in page


def test_the_provider_change_page_never_shows_a_secret(admin_client, filled):
    for row in StorageProviderDb.objects.all():
        page = admin_client.get(f"/admin/backends/storageproviderdb/{row.pk}/change/")
        assert page.status_code == 200
        assert [s for s in filled if s in page.content.decode()] == []


def test_saving_a_provider_with_masked_secrets_keeps_the_stored_ones(admin_client, filled):
    row = StorageProviderDb.objects.get(name="mongo")
    form = {
        "name": "mongo",
        "storage_type": "mongodb",
        "description": "now described",
        "owner": row.owner_id,
        "is_active": "on",
        "login": json.dumps(row.masked_login),
    }

    response = admin_client.post(f"/admin/backends/storageproviderdb/{row.pk}/change/", form)

    row.refresh_from_db()
    assert response.status_code == 302
    assert (row.description, row.login) == ("now described", MONGO)


def test_adding_a_provider_in_the_admin_lower_cases_its_name(admin_client, admin_user, tmp_path):
    form = {
        "name": "NewLab",
        "storage_type": "local",
        "description": "",
        "owner": admin_user.pk,
        "is_active": "on",
        "login": json.dumps({"base_path": str(tmp_path)}),
    }

    response = admin_client.post("/admin/backends/storageproviderdb/add/", form)

    assert response.status_code == 302
    assert list(StorageProviderDb.objects.values_list("name", flat=True)) == ["newlab"]


def test_adding_a_provider_with_a_bad_login_shows_the_error(admin_client, admin_user):
    form = {
        "name": "lab",
        "storage_type": "mongodb",
        "owner": admin_user.pk,
        "is_active": "on",
        "login": json.dumps({"mongodb_username": "u"}),
    }

    response = admin_client.post("/admin/backends/storageproviderdb/add/", form)

    assert response.status_code == 200
    assert "&#x27;mongodb_password&#x27; is missing" in response.content.decode()
    assert not StorageProviderDb.objects.exists()


def test_a_bad_name_in_the_admin_is_explained_once(admin_client, admin_user, tmp_path):
    form = {
        "name": "new lab",
        "storage_type": "local",
        "owner": admin_user.pk,
        "is_active": "on",
        "login": json.dumps({"base_path": str(tmp_path)}),
    }

    response = admin_client.post("/admin/backends/storageproviderdb/add/", form)

    assert response.status_code == 200
    assert response.content.decode().count(NAME_RULE) == 1
    assert not StorageProviderDb.objects.exists()


def issue_in_admin(admin_client, owner, **extra) -> str:  # type: ignore[no-untyped-def]
    """Add a token through the admin form; the plaintext the message showed."""
    response = admin_client.post(
        "/admin/backends/token/add/", {"user": owner.pk, "is_active": "on", **extra}, follow=True
    )
    assert response.status_code == 200
    shown = [m.message for m in get_messages(response.wsgi_request) if "New token for" in m.message]
    assert len(shown) == 1
    match = re.search(r"New token for \S+: (\S+) — copy it now", shown[0])
    assert match
    page = response.content.decode()
    assert match.group(1) in page  # shown once, on the page after saving
    return match.group(1)


def test_issuing_a_token_in_the_admin_shows_it_once_and_stores_its_digest(
    admin_client, user, storage
):
    plaintext = issue_in_admin(admin_client, user)

    token = Token.objects.get()
    assert token.key == hashlib.sha256(plaintext.encode()).hexdigest()
    assert token.user == user
    # it is the caller's key: a missing job is 406, not 401
    answer = admin_client.get(
        "/api/v2/fermions/get_job_status", {"job_id": "0" * 24, "token": plaintext}
    )
    assert answer.status_code == 406
    # and it is never shown again
    for url in ("/admin/backends/token/", f"/admin/backends/token/{token.pk}/change/"):
        assert plaintext not in admin_client.get(url).content.decode()


def test_a_token_issued_inactive_in_the_admin_is_refused(admin_client, user, storage):
    response = admin_client.post("/admin/backends/token/add/", {"user": user.pk}, follow=True)
    plaintext = re.search(r"New token for \S+: (\S+) —", response.content.decode()).group(1)

    assert Token.objects.get().is_active is False
    answer = admin_client.get(
        "/api/v2/fermions/get_job_status", {"job_id": "0" * 24, "token": plaintext}
    )
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("action", "before", "after"), [("deactivate", True, False), ("activate", False, True)]
)
def test_token_actions_switch_tokens_and_the_api_follows(
    admin_client, user, storage, action, before, after
):
    token, plaintext = issue_token(user)
    Token.objects.update(is_active=before)
    other, _ = issue_token(get_user_model().objects.create_user("bob"))

    admin_client.post(
        "/admin/backends/token/",
        {"action": action, "_selected_action": [token.pk]},
    )

    token.refresh_from_db()
    other.refresh_from_db()
    assert (token.is_active, other.is_active) == (after, True)
    answer = admin_client.get(
        "/api/v2/fermions/get_job_status", {"job_id": "0" * 24, "token": plaintext}
    )
    assert answer.status_code == (406 if after else 401)


def test_the_ledger_is_read_only_in_the_admin(admin_client, filled):
    row = Job.objects.get()

    add = admin_client.get("/admin/backends/job/add/")
    change = admin_client.post(
        f"/admin/backends/job/{row.pk}/change/", {"job_id": "b" * 24, "display_name": "x"}
    )
    delete = admin_client.post(f"/admin/backends/job/{row.pk}/delete/", {"post": "yes"})
    view = admin_client.get(f"/admin/backends/job/{row.pk}/change/")

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    row.refresh_from_db()
    assert (row.job_id, row.display_name) == ("65a000000000000000000001", "fermions")
    assert Job.objects.count() == 1


def test_admin_pages_need_a_staff_login(client, filled):
    for url in CHANGELISTS:
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
