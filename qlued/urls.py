"""URL map: the admin, the two API mounts, JSON 404s for the rest of /api/, health probes."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from backends.api import qiskit_api, v2_api
from backends.health import healthz, readyz
from backends.views import api_not_found

# Django tries these in order: the API, which answers most requests, first.
urlpatterns = [
    path("api/v2/", v2_api.urls),
    path("api/qiskit-cold-atom/", qiskit_api.urls),
    re_path(r"^api(?P<rest>/.*)?$", api_not_found),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("backends.dashboard.urls")),  # /dashboard/ and /metrics
    path("", RedirectView.as_view(url="/api/v2/docs", permanent=False)),
]
