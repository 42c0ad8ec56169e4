"""get_config, get_backend_status and backends (SPEC §2, §3, §4): names, urls, liveness."""

from __future__ import annotations

import copy
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backends.models import StorageProviderDb
from storage_providers import LocalProvider, Place, Ref
from tests.conftest import FERMIONS_CONFIG, every_medium

pytest_generate_tests = every_medium

V2 = "/api/v2"
QISKIT = "/api/qiskit-cold-atom"
UNKNOWN = "Unknown back-end!"
QISKIT_CONSTANTS = {
    "conditional": False,
    "local": False,
    "open_pulse": False,
    "memory": True,
    "coupling_map": "linear",
    "dynamic_reprate_enabled": False,
}
LAB_CONFIG = {
    **copy.deepcopy(FERMIONS_CONFIG),
    "description": "The real machine.",
    "version": "1.2",
    "display_name": "lab",
    "simulator": False,
    "num_wires": 4,
    "wire_order": "sequential",
    "cold_atom_type": "spin",
    "num_species": 1,
}


def error(detail: str, job_id: str = "None") -> dict:
    return {"job_id": job_id, "status": "ERROR", "detail": detail, "error_message": detail}


def served(config: dict, full_name: str, url: str | None) -> dict:
    """The served config (BackendConfigSchemaOut) of a stored one, as SPEC §3 spells it out."""
    return {
        "description": config["description"],
        "display_name": config["display_name"],
        "backend_version": config["version"],
        "n_qubits": config["num_wires"],
        "backend_name": full_name,
        "basis_gates": [gate["name"] for gate in config["gates"]],
        "max_experiments": config["max_experiments"],
        "max_shots": config["max_shots"],
        "simulator": config["simulator"],
        "gates": config["gates"],
        "supported_instructions": config["supported_instructions"],
        "cold_atom_type": config["cold_atom_type"],
        "wire_order": config["wire_order"],
        "num_species": config["num_species"],
        "url": url,
        **QISKIT_CONSTANTS,
    }


def fermions(url_prefix: str = f"http://testserver{V2}/") -> dict:
    full = "alqor_fermions_simulator"
    return served(FERMIONS_CONFIG, full, f"{url_prefix}{full}/")


def lab(url_prefix: str = f"http://testserver{V2}/") -> dict:
    full = "alqor_lab_hardware"
    return served(LAB_CONFIG, full, f"{url_prefix}{full}/")


@pytest.fixture
def backends(storage: LocalProvider) -> LocalProvider:
    """Provider `alqor` with a simulator (`fermions`) and a hardware backend (`lab`)."""
    storage.upload_config("lab", copy.deepcopy(LAB_CONFIG))
    return storage


@pytest.fixture
def provider_row(user, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Make another StorageProviderDb row."""

    def make(name: str, storage_type: str = "local", login: dict | None = None, **extra):  # type: ignore[no-untyped-def]
        if login is None:
            login = {"base_path": str(tmp_path / name)}
        return StorageProviderDb.objects.create(
            name=name, storage_type=storage_type, owner=user, login=login, **extra
        )

    return make


def with_config(provider: LocalProvider, display: str, **changes: object) -> dict:
    config = {**copy.deepcopy(FERMIONS_CONFIG), "display_name": display, **changes}
    provider.upload_config(display, config)
    return config


# ---- get_config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "body"),
    [
        ("fermions", 200, fermions()),
        ("alqor_fermions_simulator", 200, fermions()),
        ("lab", 200, lab()),
        ("alqor_lab_hardware", 200, lab()),
        # suffix that does not match the config's `simulator` flag
        ("alqor_fermions_hardware", 404, error(UNKNOWN)),
        ("alqor_lab_simulator", 404, error(UNKNOWN)),
        ("alqor_fermions_qpu", 404, error(UNKNOWN)),
        # a part count other than one or three
        ("alqor_fermions", 404, error(UNKNOWN)),
        ("alqor_fermions_simulator_x", 404, error(UNKNOWN)),
        ("_fermions_simulator", 404, error(UNKNOWN)),
        ("alqor__simulator", 404, error(UNKNOWN)),
        # names are case-sensitive
        ("Fermions", 404, error(UNKNOWN)),
        ("Alqor_fermions_simulator", 404, error(UNKNOWN)),
        ("alqor_Fermions_simulator", 404, error(UNKNOWN)),
        ("alqor_fermions_Simulator", 404, error(UNKNOWN)),
        ("ALQOR_FERMIONS_SIMULATOR", 404, error(UNKNOWN)),
        # names outside the rule of SPEC §2 never reach storage
        ("al%00qor_fermions_simulator", 404, error(UNKNOWN)),
        ("fermions%00", 404, error(UNKNOWN)),
        ("..", 404, error(UNKNOWN)),
        ("%2E%2E", 404, error(UNKNOWN)),
        ("alqor_..%2Fbackends_simulator", 404, error(UNKNOWN)),
        ("alqor%2Ffermions", 404, error(UNKNOWN)),
        ("alqor%2F..%2Ffermions", 404, error(UNKNOWN)),
        ("alqor%20fermions", 404, error(UNKNOWN)),
        ("alqor_fermions%20_simulator", 404, error(UNKNOWN)),
        ("%20fermions", 404, error(UNKNOWN)),
        ("fermions.json", 404, error(UNKNOWN)),
        ("alqor_fer-mions_simulator", 404, error(UNKNOWN)),
        # unknown display name or provider
        ("alqor_nothing_simulator", 404, error(UNKNOWN)),
        ("nothing", 404, error(UNKNOWN)),
        ("other_fermions_simulator", 404, error(UNKNOWN)),
    ],
)
def test_get_config_resolves_names_as_spec_section_2_says(client, backends, name, status, body):
    response = client.get(f"{V2}/{name}/get_config")

    assert (response.status_code, response.json()) == (status, body)


@pytest.mark.parametrize("endpoint", ["get_config", "get_backend_status"])
@pytest.mark.parametrize(
    "name", ["alqor_fermions_hardware", "alqor_fermions", "al%00qor", "..", "a%2Fb", "Fermions"]
)
def test_both_config_endpoints_refuse_unknown_names_alike(client, backends, endpoint, name):
    response = client.get(f"{V2}/{name}/{endpoint}")

    assert (response.status_code, response.json()) == (404, error(UNKNOWN))


@pytest.mark.parametrize(
    "name",
    ["alqor_..x_simulator", "alqor_..%2F..%2Fx_simulator", "alqor_fer%20mions_simulator", "%00"],
)
@pytest.mark.parametrize("endpoint", ["get_config", "get_backend_status"])
def test_a_bad_name_never_touches_storage(client, user, tmp_path, name, endpoint):
    """A provider whose folder is a file answers 503 to any name that reaches it."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    StorageProviderDb.objects.create(
        name="alqor", storage_type="local", owner=user, login={"base_path": str(blocker)}
    )

    refused = client.get(f"{V2}/{name}/{endpoint}")
    reached = client.get(f"{V2}/alqor_fermions_simulator/{endpoint}")

    assert (refused.status_code, refused.json()) == (404, error(UNKNOWN))
    assert reached.status_code == 503


def test_a_one_part_name_uses_the_default_storage_setting(client, backends, provider_row, settings):
    other = LocalProvider("lab2", Path(provider_row("lab2").login["base_path"]))
    config = with_config(other, "fermions", description="Lab two's fermions.")
    settings.DEFAULT_STORAGE = "lab2"

    response = client.get(f"{V2}/fermions/get_config")

    full = "lab2_fermions_simulator"
    expected = served(config, full, f"http://testserver{V2}/{full}/")
    assert (response.status_code, response.json()) == (200, expected)


def test_an_inactive_provider_is_an_unknown_backend(client, backends, local_provider):
    local_provider.is_active = False
    local_provider.save()

    for path in ("alqor_fermions_simulator/get_config", "fermions/get_backend_status"):
        response = client.get(f"{V2}/{path}")
        assert (response.status_code, response.json()) == (404, error(UNKNOWN))


@pytest.mark.parametrize(
    ("storage_type", "login"),
    [("dropbox", {"app_key": "k", "app_secret": "s", "refresh_token": "r"})],
)
@pytest.mark.parametrize("endpoint", ["get_config", "get_backend_status"])
def test_a_provider_of_a_type_without_implementation_is_503(
    client, dropbox_not_built, provider_row, storage_type, login, endpoint
):
    provider_row("remote", storage_type, login)

    response = client.get(f"{V2}/remote_fermions_simulator/{endpoint}")

    detail = f"Storage type {storage_type} is not available."
    assert (response.status_code, response.json()) == (503, error(detail))


def test_an_unreachable_provider_is_503_not_500(client, provider_row, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    provider_row("broken", login={"base_path": str(blocker)})

    response = client.get(f"{V2}/broken_fermions_simulator/get_config")

    assert response.status_code == 503
    assert response.json() == error(
        "The storage provider is not reachable right now. Try again later."
    )


def test_a_stored_config_that_does_not_fit_the_schema_is_not_served(client, storage):
    storage.write(Ref(Place.CONFIGS, "broken"), {"display_name": "broken", "version": "1"})

    response = client.get(f"{V2}/alqor_broken_simulator/get_config")

    assert (response.status_code, response.json()) == (404, error(UNKNOWN))


def test_a_signed_config_is_served_from_its_payload(client, storage):
    config = {**copy.deepcopy(FERMIONS_CONFIG), "sign": True, "kid": "key1"}
    envelope = {
        "header": {"alg": "EdDSA", "kid": "key1", "typ": "JWS", "version": "0.1"},
        "payload": config,
        "signature": "c2lnbmF0dXJl",
    }
    storage.write(Ref(Place.CONFIGS, "fermions"), envelope)

    response = client.get(f"{V2}/alqor_fermions_simulator/get_config")

    assert (response.status_code, response.json()) == (200, fermions())


@pytest.mark.parametrize(
    ("base_url", "mount", "url"),
    [
        ("", V2, "http://testserver/api/v2/alqor_fermions_simulator/"),
        (
            "https://qlued.example.org",
            V2,
            "https://qlued.example.org/api/v2/alqor_fermions_simulator/",
        ),
        ("", QISKIT, "http://testserver/api/qiskit-cold-atom/alqor_fermions_simulator/"),
        (
            "https://qlued.example.org",
            QISKIT,
            "https://qlued.example.org/api/qiskit-cold-atom/alqor_fermions_simulator/",
        ),
    ],
)
def test_url_is_base_url_plus_mount_plus_full_name(client, storage, settings, base_url, mount, url):
    settings.BASE_URL = base_url

    response = client.get(f"{mount}/fermions/get_config")

    assert (response.status_code, response.json()["url"]) == (200, url)


def test_without_base_url_the_requests_own_scheme_and_host_are_used(client, storage):
    response = client.get(
        f"{V2}/fermions/get_config", headers={"host": "localhost:8000"}, secure=True
    )

    assert response.json()["url"] == "https://localhost:8000/api/v2/alqor_fermions_simulator/"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2//alqor_fermions_simulator//get_config",
        "/api/v2/alqor_fermions_simulator//get_config",
        "/api//v2/alqor_fermions_simulator/get_config",
        "/api/v2///alqor_fermions_simulator///get_config",
        "/api/qiskit-cold-atom//alqor_fermions_simulator//get_config",
    ],
)
def test_repeated_slashes_count_as_one(client, storage, path):
    response = client.get(path)

    mount = f"{QISKIT}/" if "qiskit" in path else f"{V2}/"
    assert (response.status_code, response.json()) == (200, fermions(f"http://testserver{mount}"))


# ---- get_backend_status ---------------------------------------------------------------------


def stamp(provider: LocalProvider, display: str, **fields: object) -> None:
    config = provider.get_config(display)
    provider.upload_config(display, {**config, **fields})


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize(
    ("fields", "t_timeout", "operational"),
    [
        ({}, 300, False),
        ({"last_queue_check": None}, 300, False),
        ({"last_queue_check": ago(5)}, 300, True),
        ({"last_queue_check": ago(5)}, 60, True),
        ({"last_queue_check": ago(120)}, 60, False),
        ({"last_queue_check": ago(120)}, 300, True),
        ({"last_queue_check": ago(5)}, 1, False),
        # Mongo hands back naive datetimes: they are UTC
        ({"last_queue_check": ago(5)[:-6]}, 60, True),
        ({"last_queue_check": ago(120)[:-6]}, 60, False),
        # a stamp in another zone is compared as the instant it names
        (
            {
                "last_queue_check": (datetime.now(UTC) - timedelta(seconds=5))
                .astimezone()
                .isoformat()
            },
            60,
            True,
        ),
    ],
)
def test_operational_only_while_last_queue_check_is_within_t_timeout(
    client, storage, settings, fields, t_timeout, operational
):
    stamp(storage, "fermions", **fields)
    settings.T_TIMEOUT = t_timeout

    response = client.get(f"{V2}/alqor_fermions_simulator/get_backend_status")

    assert response.status_code == 200
    assert response.json() == {
        "backend_name": "alqor_fermions_simulator",
        "backend_version": "0.1",
        "operational": operational,
        "pending_jobs": 0,
        "status_msg": "",
    }


@pytest.mark.parametrize(
    ("name", "fields", "body"),
    [
        (
            "fermions",
            {"pending_jobs": 7, "status_msg": "cooling down", "last_queue_check": ago(1)},
            {
                "backend_name": "alqor_fermions_simulator",
                "backend_version": "0.1",
                "operational": True,
                "pending_jobs": 7,
                "status_msg": "cooling down",
            },
        ),
        (
            "alqor_fermions_simulator",
            {"pending_jobs": None, "status_msg": None},
            {
                "backend_name": "alqor_fermions_simulator",
                "backend_version": "0.1",
                "operational": False,
                "pending_jobs": 0,
                "status_msg": "",
            },
        ),
        (
            "alqor_lab_hardware",
            {"pending_jobs": 2},
            {
                "backend_name": "alqor_lab_hardware",
                "backend_version": "1.2",
                "operational": False,
                "pending_jobs": 2,
                "status_msg": "",
            },
        ),
    ],
)
def test_backend_status_has_exactly_the_five_keys(client, backends, name, fields, body):
    display = "lab" if "lab" in name else "fermions"
    stamp(backends, display, **fields)

    response = client.get(f"{V2}/{name}/get_backend_status")

    assert (response.status_code, response.json()) == (200, body)
    assert list(response.json()) == [
        "backend_name",
        "backend_version",
        "operational",
        "pending_jobs",
        "status_msg",
    ]


def test_backend_status_goes_off_when_the_spooler_stops_stamping(client, storage, settings):
    settings.T_TIMEOUT = 30
    stamp(storage, "fermions", last_queue_check=ago(29))
    before = client.get(f"{V2}/fermions/get_backend_status").json()["operational"]

    stamp(storage, "fermions", last_queue_check=ago(31))
    after = client.get(f"{V2}/fermions/get_backend_status").json()["operational"]

    assert (before, after) == (True, False)


def test_a_remembered_status_turns_off_when_its_queue_check_grows_too_old(
    client, storage, settings
):
    """With caches on, the config is not read again, but `operational` still turns on time."""
    settings.CACHE_SECONDS = 60
    settings.T_TIMEOUT = 1
    stamp(storage, "fermions", last_queue_check=ago(0.2))

    def operational() -> bool:
        return client.get(f"{V2}/fermions/get_backend_status").json()["operational"]

    before = [operational(), operational()]
    time.sleep(1.0)  # the stamp is older than T_TIMEOUT now; the cached config is not

    assert (before, operational()) == ([True, True], False)


# ---- backends -------------------------------------------------------------------------------


def test_backends_lists_every_backend_of_every_active_provider(client, backends, provider_row):
    second = LocalProvider("zeta", Path(provider_row("zeta").login["base_path"]))
    tweezers = with_config(second, "tweezers", description="Zeta's tweezers.")
    off = LocalProvider("off", Path(provider_row("off", is_active=False).login["base_path"]))
    with_config(off, "hidden")

    response = client.get(f"{V2}/backends")

    zeta = "zeta_tweezers_simulator"
    assert response.status_code == 200
    assert response.json() == [
        fermions(),
        lab(),
        served(tweezers, zeta, f"http://testserver{V2}/{zeta}/"),
    ]


def test_backends_skips_display_names_containing_dummy(client, storage):
    with_config(storage, "dummy")
    with_config(storage, "fermionsdummy")
    with_config(storage, "dummy2")

    response = client.get(f"{V2}/backends")

    assert (response.status_code, response.json()) == (200, [fermions()])


def test_backends_skips_and_logs_a_provider_that_cannot_be_reached(
    client, storage, provider_row, tmp_path, caplog
):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    provider_row("broken", login={"base_path": str(blocker)})
    provider_row(
        "mongo",
        "mongodb",
        {"mongodb_username": "u", "mongodb_password": "p", "mongodb_database_url": "x.example"},
    )

    with caplog.at_level(logging.WARNING):
        response = client.get(f"{V2}/backends")

    assert (response.status_code, response.json()) == (200, [fermions()])
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert any("broken" in message for message in skipped)
    assert any("mongo" in message for message in skipped)


def test_backends_skips_configs_that_do_not_fit_the_schema(client, storage):
    storage.write(Ref(Place.CONFIGS, "broken"), {"display_name": "broken"})

    response = client.get(f"{V2}/backends")

    assert (response.status_code, response.json()) == (200, [fermions()])


def test_backends_is_empty_without_providers(client, db):
    response = client.get(f"{V2}/backends")

    assert (response.status_code, response.json()) == (200, [])


def test_backends_on_the_qiskit_mount_points_urls_at_that_mount(client, storage, settings):
    settings.BASE_URL = "https://qlued.example.org"

    response = client.get(f"{QISKIT}/backends")

    assert (response.status_code, response.json()) == (
        200,
        [fermions(f"https://qlued.example.org{QISKIT}/")],
    )


# ---- the docs -------------------------------------------------------------------------------


@pytest.mark.parametrize("mount", [V2, QISKIT])
def test_the_docs_describe_every_path_parameter_as_a_required_string(client, mount):
    """Path parameters reach the views as the route captured them; the schema still says so."""
    schema = client.get(f"{mount}/openapi.json").json()

    described, expected = {}, {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for name in re.findall(r"{(\w+)}", path):
                expected[(path, method, name)] = (True, "string")
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    key = (path, method, parameter["name"])
                    described[key] = (parameter["required"], parameter["schema"]["type"])

    assert len(expected) >= 7 and described == expected
