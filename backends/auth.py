"""API tokens: issue, and turn a presented token into the user it belongs to."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from .cache import TTLCache
from .errors import InvalidCredentials
from .models import StorageProviderDb, Token, token_digest


@dataclass(frozen=True)
class Caller:
    """Who is asking: enough to check ownership and to name user folders."""

    user_id: int
    username: str


_callers: TTLCache[Caller | None] = TTLCache()


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
    if not plaintext or len(plaintext) > 512:
        raise InvalidCredentials()
    digest = token_digest(plaintext)

    def load() -> Caller | None:
        row = (
            Token.objects.filter(key=digest, is_active=True, user__is_active=True)
            .values_list("user_id", "user__username")
            .first()
        )
        return Caller(*row) if row else None

    caller = _callers.get(digest, load)
    if caller is None:
        raise InvalidCredentials()
    return caller
