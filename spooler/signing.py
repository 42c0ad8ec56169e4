"""Ed25519 signed envelopes, byte-compatible with sqooler 0.9.0 (SPEC §3).

sqooler's envelope is not compact JWS. It signs

    urlsafe_b64encode(header_json) + b"." + urlsafe_b64encode(json.dumps(payload).encode())

where `header_json` is the compact JSON `{"alg":"EdDSA","kid":...,"typ":"JWS","version":"0.1"}`
(key order fixed, non-ASCII kept as UTF-8, as pydantic dumps it), `json.dumps` keeps its
default separators and ASCII escaping and writes datetimes with `isoformat()`, and base64
padding is kept everywhere: in the signed bytes, in the signature, and in the keys' `x`/`d`.
A verifier rebuilds both parts from the stored envelope, so the stored payload must be
exactly what was signed: `sign()` therefore stores the payload as plain JSON values.

Key files are JWK JSON objects in the shape sqooler's own key generator produces
(`{"x", "key_ops": "sign", "kid", "d", "kty": "OKP", "alg": "EdDSA", "crv": "Ed25519"}`).
`load_private_jwk` also reads the base64url `PRIVATE_JWK_STR` string that sqooler's
`cli_private_key_str` prints, and standard RFC 8037 JWKs (unpadded, `key_ops` a list).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ALG = "EdDSA"
TYP = "JWS"
VERSION = "0.1"
ENVELOPE_KEYS = frozenset({"header", "payload", "signature"})

_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
_B64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


class InvalidKey(ValueError):
    """A JWK that is not a usable Ed25519 key for the operation asked of it."""


@dataclass(frozen=True)
class PrivateKey:
    """An Ed25519 signing key and the key id (`kid`) its signatures and public key carry."""

    kid: str
    key: Ed25519PrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> PrivateKey:
        """Build the key from a private JWK, checking that `x`, when given, belongs to `d`."""
        _check_okp(jwk)
        if not _allows(jwk.get("key_ops"), "sign"):
            raise InvalidKey("The JWK is not intended for signing (key_ops).")
        if jwk.get("d") is None:
            raise InvalidKey("The JWK holds no private key (d).")
        key = Ed25519PrivateKey.from_private_bytes(_key_bytes(jwk, "d"))
        public = key.public_key().public_bytes_raw()
        if jwk.get("x") is not None and _key_bytes(jwk, "x") != public:
            raise InvalidKey("The JWK's public key (x) does not belong to its private key (d).")
        return cls(kid=_kid(jwk), key=key)

    def public_jwk(self) -> dict[str, Any]:
        """The public half, as sqooler stores it under `backends/public_keys/{kid}`."""
        return {
            "x": _b64encode(self.key.public_key().public_bytes_raw()),
            "key_ops": "verify",
            "kid": self.kid,
            "d": None,
            "kty": "OKP",
            "alg": ALG,
            "crv": "Ed25519",
        }


def generate_private_jwk(kid: str) -> dict[str, Any]:
    """A fresh private JWK in sqooler's shape, ready to be written to a key file."""
    if not isinstance(kid, str) or not kid:
        raise InvalidKey("A key id (kid) must be a non-empty string.")
    key = Ed25519PrivateKey.generate()
    return {
        "x": _b64encode(key.public_key().public_bytes_raw()),
        "key_ops": "sign",
        "kid": kid,
        "d": _b64encode(key.private_bytes_raw()),
        "kty": "OKP",
        "alg": ALG,
        "crv": "Ed25519",
    }


def load_private_jwk(path: str | Path) -> PrivateKey:
    """Read a private key file: a JWK JSON object, or sqooler's base64url `PRIVATE_JWK_STR`."""
    text = Path(path).read_text(encoding="utf-8").strip()
    try:
        if not text.startswith("{"):
            text = _b64decode(text.strip("\"'")).decode("utf-8")
        jwk = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        # never echo the file: it holds the private key
        raise InvalidKey(f"{path} is neither a JWK JSON object nor a sqooler key string.") from exc
    if not isinstance(jwk, dict):
        raise InvalidKey(f"{path} does not hold a JWK JSON object.")
    return PrivateKey.from_jwk(jwk)


def is_envelope(doc: Any) -> bool:
    """Whether a stored document is a signed envelope (sqooler's test: exactly its three keys)."""
    return isinstance(doc, dict) and set(doc) == ENVELOPE_KEYS


def sign(doc: dict[str, Any], key: PrivateKey) -> dict[str, Any]:
    """Wrap `doc` in a signed envelope `{"header", "payload", "signature"}`.

    The payload is stored as the JSON values that were signed (datetimes become their
    ISO strings), so the envelope verifies after any JSON round trip that keeps key order.
    """
    header = {"alg": ALG, "kid": key.kid, "typ": TYP, "version": VERSION}
    payload_json = _payload_json(doc)
    payload = json.loads(payload_json)
    if _payload_json(payload) != payload_json:
        raise ValueError("The document does not survive a JSON round trip (duplicate keys?).")
    signature = key.key.sign(_signing_input(header, payload_json))
    return {"header": header, "payload": payload, "signature": _b64encode(signature)}


def verify(envelope: dict[str, Any], public_jwk: dict[str, Any]) -> bool:
    """Whether `envelope` carries a valid signature by `public_jwk`.

    Accepts exactly what sqooler 0.9.0's `JWSDict.verify_signature` accepts, and refuses
    an envelope whose header names another key id or algorithm. Raises `InvalidKey` when
    `public_jwk` is not an Ed25519 verification key; a malformed envelope is just invalid.
    """
    public_key = _public_key(public_jwk)
    header = _signed_header(envelope)
    if header is None or not isinstance(envelope.get("signature"), str):
        return False
    if header["alg"] != ALG or header["kid"] != public_jwk.get("kid", header["kid"]):
        return False
    try:
        signature = _b64decode(envelope["signature"])
        message = _signing_input(header, _payload_json(envelope["payload"]))
    except (ValueError, TypeError):
        return False
    if len(signature) != _SIGNATURE_BYTES:
        return False
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _signed_header(envelope: Any) -> dict[str, str] | None:
    """The header as the signer serialised it; sqooler fills missing fields with defaults."""
    if not isinstance(envelope, dict):
        return None
    header, payload = envelope.get("header"), envelope.get("payload")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    rebuilt = {
        "alg": header.get("alg", ALG),
        "kid": header.get("kid"),
        "typ": header.get("typ", TYP),
        "version": header.get("version", VERSION),
    }
    if not all(isinstance(value, str) for value in rebuilt.values()):
        return None
    return rebuilt


def _signing_input(header: dict[str, str], payload_json: str) -> bytes:
    header_json = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    return (
        base64.urlsafe_b64encode(header_json.encode("utf-8"))
        + b"."
        + base64.urlsafe_b64encode(payload_json.encode("utf-8"))
    )


def _payload_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, default=_datetime_to_iso)


def _datetime_to_iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} cannot be signed.")


def _public_key(jwk: dict[str, Any]) -> Ed25519PublicKey:
    _check_okp(jwk)
    if not _allows(jwk.get("key_ops"), "verify"):
        raise InvalidKey("The JWK is not intended for verification (key_ops).")
    if jwk.get("x") is None:
        raise InvalidKey("The JWK holds no public key (x).")
    return Ed25519PublicKey.from_public_bytes(_key_bytes(jwk, "x"))


def _check_okp(jwk: Any) -> None:
    if not isinstance(jwk, dict):
        raise InvalidKey("A JWK must be a JSON object.")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidKey("Only Ed25519 keys (kty OKP, crv Ed25519) are supported.")
    if jwk.get("alg", ALG) != ALG:
        raise InvalidKey(f"The JWK's alg must be {ALG}.")


def _kid(jwk: dict[str, Any]) -> str:
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidKey("The JWK needs a key id (kid).")
    return kid


def _allows(key_ops: Any, operation: str) -> bool:
    """sqooler writes `key_ops` as one string, RFC 7517 as a list; absent allows anything."""
    if key_ops is None:
        return True
    if isinstance(key_ops, str):
        return key_ops == operation
    return isinstance(key_ops, list) and operation in key_ops


def _key_bytes(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    try:
        raw = _b64decode(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != _KEY_BYTES:
        raise InvalidKey(f"The JWK's {name} is not a base64url-encoded 32-byte Ed25519 key.")
    return raw


def _b64encode(raw: bytes) -> str:
    """urlsafe base64 with its padding, as sqooler writes keys and signatures."""
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _b64decode(text: str) -> bytes:
    """urlsafe base64, padded (sqooler) or not (RFC 7515); anything else is a ValueError."""
    if not _B64URL.match(text):
        raise ValueError("not urlsafe base64")
    unpadded = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except binascii.Error as exc:
        raise ValueError("not urlsafe base64") from exc
