"""Writes of the dashboard: tokens issued, named and revoked from the page, token log-ins."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from backends import selectors, services
from backends.auth import Caller, authenticate, issue_token
from backends.models import Token, token_digest

from .models import TokenName

# The session remembers which token started it, so that revoking the token ends it.
SESSION_TOKEN = "dashboard_token_digest"
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"


def issue_named_token(*, user: AbstractBaseUser, name: str) -> tuple[Token, str]:
    """A new token for `user` under `name`; the plaintext is returned once and kept nowhere."""
    with transaction.atomic():
        token, plaintext = issue_token(user)
        TokenName.objects.create(token=token, name=name)
    return token, plaintext


def revoke_token(*, user: AbstractBaseUser, token_pk: int) -> bool:
    """Deactivate one of `user`'s tokens; False when they hold no active token of that id.

    The API refuses it in every worker within CACHE_SECONDS (SPEC §4).
    """
    return bool(
        Token.objects.filter(pk=token_pk, user=user, is_active=True).update(is_active=False)
    )


def log_in_with_token(request: HttpRequest, *, plaintext: str) -> AbstractBaseUser:
    """Start a session for the owner of an active API token; InvalidCredentials otherwise."""
    caller = authenticate(plaintext)
    user = get_user_model().objects.get(pk=caller.user_id)
    login(request, user, backend=PASSWORD_BACKEND)
    request.session[SESSION_TOKEN] = token_digest(plaintext)
    return user


def session_token_revoked(request: HttpRequest) -> bool:
    """Whether the session was started with a token that is no longer active."""
    digest = request.session.get(SESSION_TOKEN)
    if digest is None:
        return False
    return not Token.objects.filter(key=digest, is_active=True).exists()


def cancel_own_job(*, caller: Caller, job_id: str) -> dict:
    """cancel_job of the API for a job the caller names by id alone (the page knows no backend)."""
    row = selectors.callers_job(caller, job_id)
    backend = selectors.resolve_backend(selectors.backend_name_of(row), settings.DEFAULT_STORAGE)
    return services.cancel_job(caller=caller, backend=backend, job_id=job_id)


def submit_from_page(*, caller: Caller, backend_name: str, job_text: str) -> dict:
    """post_job of the API, for the Submit page: the same checks, quotas and ledger row."""
    backend = selectors.resolve_backend(backend_name, settings.DEFAULT_STORAGE)
    return services.submit_job(caller=caller, backend=backend, job_text=job_text)
