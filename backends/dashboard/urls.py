"""The dashboard's pages under /dashboard/, and /metrics."""

from django.urls import path
from django.views.generic import RedirectView

from backends import metrics

from . import views

app_name = "dashboard"

urlpatterns = [
    path("dashboard", RedirectView.as_view(pattern_name="dashboard:jobs", permanent=False)),
    path("dashboard/", views.jobs, name="jobs"),
    path("dashboard/login/", views.PasswordLoginView.as_view(), name="login"),
    path("dashboard/login/token/", views.token_login, name="token-login"),
    path("dashboard/logout/", views.log_out, name="logout"),
    path("dashboard/jobs/<str:job_id>/", views.job, name="job"),
    path("dashboard/jobs/<str:job_id>/cancel/", views.cancel, name="cancel"),
    path("dashboard/submit/", views.submit, name="submit"),
    path("dashboard/tokens/", views.tokens, name="tokens"),
    path("dashboard/tokens/<int:token_pk>/revoke/", views.revoke, name="revoke"),
    path("dashboard/backends/", views.backends, name="backends"),
    path("dashboard/staff/", views.staff, name="staff"),
    path("metrics", metrics.metrics_view, name="metrics"),
]
