"""API tokens: issue, and turn a presented token into the user it belongs to.

Every presented token goes the same way, whatever is wrong with it (unknown,
inactive, of an inactive user, malformed, absurdly long): one digest, one lookup,
one constant-time comparison, one answer. Wrong tokens are counted per client
address (`qlued.throttle`); past FAILED_TOKEN_ATTEMPTS_PER_MINUTE they answer 429.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from qlued.throttle.counter import count_failure

from .cache import TTLCache
from .errors import InvalidCredentials, TooManyFailedAttempts
from .models import StorageProviderDb, Token, token_digest


@dataclass(frozen=True)
class Caller:
    """Who is asking: enough to check ownership and to name user folders."""

    user_id: int
    username: str


_callers: TTLCache[Caller | None] = TTLCache()
# The address of the client of the request being answered (set by the API's edge).
client: ContextVar[str | None] = ContextVar("qlued_client", default=None)


def issue_token(
    user: AbstractBaseUser, storage_provider: StorageProviderDb | None = None
) -> tuple[Token, str]:
    """Create a token for `user`; its plaintext is returned once and kept nowhere."""
    plaintext = secrets.token_urlsafe(32)
    token = Token.objects.create(
        key=token_digest(plaintext), user=user, storage_provider=storage_provider
    )
    return token, plaintext


def authenticate(plaintext: str | None) -> Caller:
    """The caller owning an active token of an active user; InvalidCredentials otherwise."""
    digest = _digest(plaintext or "")

    def load() -> Caller | None:
        row = (
            Token.objects.filter(key=digest, is_active=True, user__is_active=True)
            .values_list("key", "user_id", "user__username")
            .first()
        )
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        return Caller(row[1], row[2])

    caller = _callers.get(digest, load)
    if caller is None or not plaintext:
        _refuse()
    assert caller is not None
    return caller


def _digest(plaintext: str) -> str:
    """The stored form of `plaintext`; a string no token can be (a lone surrogate) still has one."""
    try:
        return token_digest(plaintext)
    except UnicodeEncodeError:
        return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def _refuse() -> None:
    """401, or 429 once this client address has presented too many wrong tokens this minute."""
    address, limit = client.get(), settings.FAILED_TOKEN_ATTEMPTS_PER_MINUTE
    if address is not None and limit:
        count, seconds_left = count_failure(address)
        if count > limit:
            raise TooManyFailedAttempts(retry_after=seconds_left)
    raise InvalidCredentials()


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or from X-Forwarded-For when a trusted proxy sent it.

    The forwarded list is read from the right (each proxy appends the address it saw)
    and the first hop that is not a trusted proxy is the client; anything a client
    wrote further left is ignored.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    if not _trusted(remote):
        return remote
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed([h.strip() for h in hops if h.strip()]):
        if _address(hop) is None:
            break  # garbage: keep the last address we can vouch for
        if not _trusted(hop):
            return hop
        remote = hop
    return remote


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(text: str) -> bool:
    proxies = settings.TRUSTED_PROXIES
    if not proxies:
        return False  # as by default: no address is parsed for any request
    address = _address(text)
    return address is not None and any(address in net for net in proxies)
