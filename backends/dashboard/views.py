"""The dashboard's pages: each parses its form, calls one domain function and renders."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backends import selectors
from backends.errors import QluedError, TooManyRequests, UnknownBackend

from . import services
from .examples import examples
from .forms import JobFilterForm, SubmitForm, TokenForm, TokenLoginForm
from .selectors import (
    backend_choices,
    backends_overview,
    caller_of,
    configured_backends,
    job_page,
    last_day,
    users_tokens,
)

View = Callable[..., HttpResponse]
REFRESH_SECONDS = 3  # how often a page with a job still queued or running reloads itself


def dashboard_view(view: View) -> View:
    """Logged in, and not through a token revoked since: the session then ends."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and services.session_token_revoked(request):
            logout(request)
            messages.info(request, "The token you logged in with was revoked: log in again.")
        return login_required(view)(request, *args, **kwargs)

    return checked


class PasswordLoginView(LoginView):
    """Django's password log-in, beside the token form on the same page."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "token_form": TokenLoginForm()}


@require_POST
def token_login(request: HttpRequest) -> HttpResponse:
    form = TokenLoginForm(request.POST)
    status = 401
    if form.is_valid():
        try:
            services.log_in_with_token(request, plaintext=form.cleaned_data["token"])
            return redirect(request.POST.get("next") or settings.LOGIN_REDIRECT_URL)
        except QluedError as exc:  # 401, or 429 after too many wrong tokens from here
            form.add_error("token", exc.detail)
            status = exc.status_code
    context = {"form": PasswordLoginView.form_class(request), "token_form": form}
    return render(request, "dashboard/login.html", context, status=status)


@require_POST
def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("dashboard:login")


@require_GET
@dashboard_view
def jobs(request: HttpRequest) -> HttpResponse:
    """My jobs: the jobs API's list, its filters, and a page that reloads while jobs run."""
    form = JobFilterForm(request.GET, backends=backend_choices())
    listing: dict = {"jobs": [], "next_cursor": None}
    if form.is_valid():
        try:
            filters = selectors.JobFilters.parse(limit=20, **_filters(form.cleaned_data))
            listing = selectors.list_jobs(caller=caller_of(request.user), filters=filters)
        except QluedError as exc:
            form.add_error(None, exc.detail)
    running = any(job["status"] in ("INITIALIZING", "QUEUED", "RUNNING") for job in listing["jobs"])
    next_query = request.GET.copy()
    next_query["cursor"] = listing["next_cursor"] or ""
    context = {
        "form": form,
        "jobs": listing["jobs"],
        "next_query": next_query.urlencode() if listing["next_cursor"] else "",
        "refresh": REFRESH_SECONDS if running else None,
    }
    return render(request, "dashboard/jobs.html", context)


def _filters(data: dict) -> dict:
    return {
        "cursor": data["cursor"] or None,
        "status": data["status"] or None,
        "backend": data["backend"] or None,
        "submitted_after": data["submitted_after"],
        "submitted_before": data["submitted_before"],
    }


@require_GET
@dashboard_view
def job(request: HttpRequest, job_id: str) -> HttpResponse:
    """One job: its record, the histogram of each experiment's counts, or why it failed."""
    try:
        page = job_page(caller=caller_of(request.user), job_id=job_id)
    except QluedError as exc:
        return render(request, "dashboard/missing.html", {"detail": exc.detail}, status=404)
    context = {"page": page, "refresh": REFRESH_SECONDS if page.is_open else None}
    return render(request, "dashboard/job.html", context)


@require_POST
@dashboard_view
def cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    try:
        record = services.cancel_own_job(caller=caller_of(request.user), job_id=job_id)
    except QluedError as exc:
        messages.error(request, exc.detail)
    else:
        word = "cancelled" if record["status"] == "CANCELLED" else "being cancelled"
        messages.success(request, f"Job {job_id} is {word}.")
    return redirect(request.POST.get("next") or "dashboard:jobs")


@require_http_methods(["GET", "POST"])
@dashboard_view
def submit(request: HttpRequest) -> HttpResponse:
    """Paste or pick a job, choose backend and shots; the API's checks, shown inline."""
    configs = {backend.full_name: backend.config for backend in configured_backends()}
    chosen = request.POST.get("backend") or request.GET.get("backend") or next(iter(configs), "")
    offered = examples(configs[chosen]) if chosen in configs else {}
    choices = {"backends": list(configs), "examples": list(offered)}
    if request.method == "GET":
        form = SubmitForm(initial={"backend": chosen}, **choices)
        return render(request, "dashboard/submit.html", {"form": form})
    form = SubmitForm(request.POST, **choices)
    if form.is_valid() and "load_example" in request.POST:
        return _with_example(request, form, offered, choices)
    if form.is_valid() and not form.cleaned_data["job"].strip():
        form.add_error("job", "Paste a job, or pick an example and load it.")
    if form.is_valid():
        try:
            answer = services.submit_from_page(
                caller=caller_of(request.user), backend_name=chosen, job_text=form.job_text()
            )
        except UnknownBackend as exc:
            form.add_error("backend", exc.detail)
        except TooManyRequests as exc:
            form.add_error(None, f"{exc.detail} Try again in {exc.headers['Retry-After']} s.")
        except QluedError as exc:
            form.add_error("job" if exc.status_code == 406 else None, exc.detail)
        else:
            messages.success(request, f"Job {answer['job_id']} submitted to {chosen}.")
            return redirect("dashboard:job", job_id=answer["job_id"])
    return render(request, "dashboard/submit.html", {"form": form}, status=422)


def _with_example(
    request: HttpRequest, form: SubmitForm, offered: dict[str, str], choices: dict
) -> HttpResponse:
    """The Submit page again, its text box holding the example picked (nothing is posted)."""
    title = form.cleaned_data["example"]
    if not title:
        form.add_error("example", "Pick an example to load.")
        return render(request, "dashboard/submit.html", {"form": form}, status=422)
    loaded = SubmitForm(initial={**form.cleaned_data, "job": offered[title]}, **choices)
    return render(request, "dashboard/submit.html", {"form": loaded})


@require_http_methods(["GET", "POST"])
@dashboard_view
def tokens(request: HttpRequest) -> HttpResponse:
    """My tokens: issue one under a name (its plaintext shown on this answer only)."""
    form = TokenForm(request.POST or None)
    plaintext = None
    if request.method == "POST" and form.is_valid():
        _, plaintext = services.issue_named_token(user=request.user, name=form.cleaned_data["name"])
        form = TokenForm()
    context = {"form": form, "tokens": users_tokens(request.user), "plaintext": plaintext}
    response = render(request, "dashboard/tokens.html", context)
    response["Cache-Control"] = "no-store"  # the plaintext must not stay in a cache
    return response


@require_POST
@dashboard_view
def revoke(request: HttpRequest, token_pk: int) -> HttpResponse:
    if services.revoke_token(user=request.user, token_pk=token_pk):
        messages.success(request, "Token revoked: the API refuses it from now on.")
    else:
        messages.error(request, "No such active token.")
    return redirect("dashboard:tokens")


@require_GET
@dashboard_view
def backends(request: HttpRequest) -> HttpResponse:
    context = {"backends": backends_overview(), "t_timeout": settings.T_TIMEOUT}
    return render(request, "dashboard/backends.html", context)


@require_GET
@dashboard_view
def staff(request: HttpRequest) -> HttpResponse:
    """For staff: jobs per backend per hour and the error rate, over the last 24 hours."""
    if not request.user.is_staff:
        return render(request, "dashboard/forbidden.html", status=403)
    hours, days = last_day()
    return render(request, "dashboard/staff.html", {"hours": hours, "days": days})
