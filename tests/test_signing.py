"""Signed envelopes (SPEC §3): our own guarantees, then the cross-check with sqooler 0.9.0."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from spooler.signing import (
    InvalidKey,
    PrivateKey,
    generate_private_jwk,
    is_envelope,
    load_private_jwk,
    sign,
    verify,
)
from tests.interop import SqoolerSide
from tests.toolenvs import SQOOLER, ensure_venv

DOC: dict[str, Any] = {
    "job_id": "6650a1b2c3d4e5f6a7b8c9d0",
    "status": "DONE",
    "detail": "Zürich ✓ — done",
    "error_message": "None",
    "results": [{"shots": 3, "data": {"memory": ["0 1", "1 0"], "params": [0.1, 1e-07, 3.0]}}],
    "qobj_id": None,
    "success": True,
}
# RFC 8037, appendix A.1: unpadded, no kid, no key_ops
RFC8037_JWK = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}


@pytest.fixture(scope="session")
def sqooler() -> SqoolerSide:
    return SqoolerSide(ensure_venv("sqooler", SQOOLER))


@pytest.fixture
def key() -> PrivateKey:
    return PrivateKey.from_jwk(generate_private_jwk("test-key"))


def test_signed_envelope_verifies_with_its_public_key(key: PrivateKey) -> None:
    assert verify(sign(DOC, key), key.public_jwk())


def test_envelope_has_sqooler_header_payload_and_padded_signature(key: PrivateKey) -> None:
    envelope = sign(DOC, key)
    assert list(envelope) == ["header", "payload", "signature"]
    assert envelope["header"] == {"alg": "EdDSA", "kid": "test-key", "typ": "JWS", "version": "0.1"}
    assert list(envelope["header"]) == ["alg", "kid", "typ", "version"]
    assert envelope["payload"] == DOC
    assert len(envelope["signature"]) == 88
    assert envelope["signature"].endswith("==")
    assert is_envelope(envelope)
    assert not is_envelope(DOC)


def test_signature_covers_the_bytes_spec_section_3_names(key: PrivateKey) -> None:
    envelope = sign(DOC, key)
    header = b'{"alg":"EdDSA","kid":"test-key","typ":"JWS","version":"0.1"}'
    message = (
        base64.urlsafe_b64encode(header) + b"." + base64.urlsafe_b64encode(json.dumps(DOC).encode())
    )
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key.public_jwk()["x"]))
    public.verify(base64.urlsafe_b64decode(envelope["signature"]), message)  # raises if not


def test_envelope_verifies_after_a_json_round_trip(key: PrivateKey) -> None:
    stored = json.loads(json.dumps(sign(DOC, key)))
    assert verify(stored, key.public_jwk())


def test_datetimes_are_signed_and_stored_as_iso_strings(key: PrivateKey) -> None:
    checked = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    envelope = sign({"last_queue_check": checked, "naive": checked.replace(tzinfo=None)}, key)
    assert envelope["payload"] == {
        "last_queue_check": "2024-05-01T12:00:00.123456+00:00",
        "naive": "2024-05-01T12:00:00.123456",
    }
    assert verify(json.loads(json.dumps(envelope)), key.public_jwk())


def test_a_document_that_is_not_json_cannot_be_signed(key: PrivateKey) -> None:
    with pytest.raises(TypeError):
        sign({"when": datetime(2024, 5, 1).date()}, key)


def _set(path: tuple[str, ...], value: Any) -> Any:
    def change(envelope: dict[str, Any]) -> None:
        target = envelope
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


def _reorder_payload(envelope: dict[str, Any]) -> None:
    envelope["payload"] = dict(reversed(envelope["payload"].items()))


def _flip_signature(envelope: dict[str, Any]) -> None:
    raw = bytearray(base64.urlsafe_b64decode(envelope["signature"]))
    raw[0] ^= 1
    envelope["signature"] = base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_set(("payload", "status"), "ERROR"), id="payload value"),
        pytest.param(_set(("payload", "extra"), 1), id="payload key added"),
        pytest.param(_reorder_payload, id="payload keys reordered"),
        pytest.param(_set(("header", "kid"), "other-key"), id="header kid"),
        pytest.param(_set(("header", "version"), "0.2"), id="header version"),
        pytest.param(_set(("header", "alg"), "none"), id="header alg"),
        pytest.param(_flip_signature, id="signature bit"),
        pytest.param(_set(("signature",), "c2hvcnQ="), id="signature too short"),
        pytest.param(_set(("signature",), "not base64!"), id="signature not base64"),
        pytest.param(_set(("signature",), None), id="signature missing"),
        pytest.param(_set(("payload",), ["not", "a", "dict"]), id="payload not a dict"),
        pytest.param(_set(("header",), "EdDSA"), id="header not a dict"),
    ],
)
def test_a_tampered_envelope_does_not_verify(key: PrivateKey, tamper: Any) -> None:
    envelope = copy.deepcopy(sign(DOC, key))
    tamper(envelope)
    assert not verify(envelope, key.public_jwk())


def test_another_keys_signature_does_not_verify(key: PrivateKey) -> None:
    other = PrivateKey.from_jwk(generate_private_jwk("test-key"))
    assert not verify(sign(DOC, other), key.public_jwk())


def test_an_envelope_naming_another_kid_does_not_verify(key: PrivateKey) -> None:
    renamed = key.public_jwk() | {"kid": "another-key"}
    assert not verify(sign(DOC, key), renamed)


def test_public_jwk_has_sqooler_shape(key: PrivateKey) -> None:
    public = key.public_jwk()
    assert list(public) == ["x", "key_ops", "kid", "d", "kty", "alg", "crv"]
    assert public | {"x": None} == {
        "x": None,
        "key_ops": "verify",
        "kid": "test-key",
        "d": None,
        "kty": "OKP",
        "alg": "EdDSA",
        "crv": "Ed25519",
    }
    assert len(public["x"]) == 44
    assert public["x"].endswith("=")


def test_generated_private_jwk_is_sqooler_private_jwk_shape() -> None:
    jwk = generate_private_jwk("lab-key")
    assert list(jwk) == ["x", "key_ops", "kid", "d", "kty", "alg", "crv"]
    assert (jwk["key_ops"], jwk["kid"], jwk["kty"], jwk["alg"], jwk["crv"]) == (
        "sign",
        "lab-key",
        "OKP",
        "EdDSA",
        "Ed25519",
    )
    assert len(jwk["d"]) == len(jwk["x"]) == 44


def test_a_private_jwk_is_refused_for_verification(key: PrivateKey) -> None:
    with pytest.raises(InvalidKey):
        verify(sign(DOC, key), generate_private_jwk("test-key"))


def test_key_file_holding_a_jwk_json_object_loads(tmp_path: Path) -> None:
    jwk = generate_private_jwk("lab-key")
    path = tmp_path / "lab.jwk"
    path.write_text(json.dumps(jwk, indent=2) + "\n")
    loaded = load_private_jwk(path)
    assert loaded.kid == "lab-key"
    assert loaded.public_jwk() == {
        "x": jwk["x"],
        "key_ops": "verify",
        "kid": "lab-key",
        "d": None,
        "kty": "OKP",
        "alg": "EdDSA",
        "crv": "Ed25519",
    }


def test_key_file_holding_sqooler_private_jwk_str_loads(tmp_path: Path) -> None:
    jwk = generate_private_jwk("lab-key")
    path = tmp_path / "lab.key"
    path.write_text(base64.urlsafe_b64encode(json.dumps(jwk).encode()).decode() + "\n")
    assert load_private_jwk(str(path)).public_jwk()["x"] == jwk["x"]


def test_standard_rfc8037_jwk_loads_and_publishes_padded_x(tmp_path: Path) -> None:
    path = tmp_path / "rfc.jwk"
    path.write_text(json.dumps(RFC8037_JWK | {"kid": "rfc", "key_ops": ["sign"]}))
    assert load_private_jwk(path).public_jwk()["x"] == RFC8037_JWK["x"] + "="


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("", id="empty"),
        pytest.param("{not json", id="broken json"),
        pytest.param("[1, 2]", id="not an object"),
        pytest.param(json.dumps(RFC8037_JWK), id="no kid"),
        pytest.param(json.dumps(RFC8037_JWK | {"kid": "k", "crv": "P-256"}), id="other curve"),
        pytest.param(json.dumps(RFC8037_JWK | {"kid": "k", "key_ops": "verify"}), id="verify op"),
        pytest.param(json.dumps(RFC8037_JWK | {"kid": "k", "d": None}), id="public only"),
        pytest.param(json.dumps(RFC8037_JWK | {"kid": "k", "d": "c2hvcnQ"}), id="short d"),
        pytest.param(
            json.dumps(RFC8037_JWK | {"kid": "k", "x": generate_private_jwk("o")["x"]}),
            id="x of another key",
        ),
    ],
)
def test_a_bad_key_file_is_refused_without_echoing_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.jwk"
    path.write_text(content)
    with pytest.raises(InvalidKey) as refused:
        load_private_jwk(path)
    assert RFC8037_JWK["d"] not in str(refused.value)


# --- cross-check with sqooler 0.9.0, run in its own venv --------------------------------

KIDS = [pytest.param("spooler-key-1", id="ascii kid"), pytest.param("clé ü", id="non-ascii kid")]
CONFIG = {
    "description": "A config as sqooler signs it.",
    "version": "0.0.1",
    "display_name": "tinyspin",
    "last_queue_check": "2024-05-01T12:00:00.000017+00:00",
    "kid": None,
}


@pytest.mark.interop
@pytest.mark.parametrize("kid", KIDS)
def test_our_envelope_verifies_with_sqooler(sqooler: SqoolerSide, kid: str) -> None:
    key = PrivateKey.from_jwk(generate_private_jwk(kid))
    doc = DOC | {"last_queue_check": datetime(2024, 5, 1, 12, tzinfo=UTC)}
    envelope = sign(doc, key)
    assert sqooler("verify", envelope=envelope, public_jwk=key.public_jwk()) == {"valid": True}
    envelope["payload"]["status"] = "ERROR"
    assert sqooler("verify", envelope=envelope, public_jwk=key.public_jwk()) == {"valid": False}


@pytest.mark.interop
@pytest.mark.parametrize("kid", KIDS)
def test_sqooler_envelope_verifies_with_ours(sqooler: SqoolerSide, kid: str) -> None:
    pair = sqooler("keypair", kid=kid)
    envelope = sqooler(
        "sign", payload=CONFIG, private_jwk=pair["private"], datetime_keys=["last_queue_check"]
    )
    assert envelope["header"] == {"alg": "EdDSA", "kid": kid, "typ": "JWS", "version": "0.1"}
    assert envelope["payload"]["last_queue_check"] == CONFIG["last_queue_check"]
    assert verify(envelope, pair["public"])
    envelope["payload"]["version"] = "0.0.2"
    assert not verify(envelope, pair["public"])


@pytest.mark.interop
def test_sqooler_key_string_loads_and_signs_for_sqooler(
    sqooler: SqoolerSide, tmp_path: Path
) -> None:
    pair = sqooler("keypair", kid="lab-key")
    path = tmp_path / "lab.key"
    path.write_text(pair["config_str"])
    key = load_private_jwk(path)
    assert key.public_jwk() == pair["public"]
    envelope = sign(DOC, key)
    assert sqooler("verify", envelope=envelope, public_jwk=pair["public"]) == {"valid": True}
    assert envelope == sqooler("sign", payload=DOC, private_jwk=pair["private"])


@pytest.mark.interop
def test_sqooler_signs_with_our_generated_key(sqooler: SqoolerSide) -> None:
    jwk = generate_private_jwk("lab-key")
    envelope = sqooler("sign", payload=DOC, private_jwk=jwk)
    assert verify(envelope, PrivateKey.from_jwk(jwk).public_jwk())
