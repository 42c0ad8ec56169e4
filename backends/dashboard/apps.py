from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The dashboard: its own app so that its one table (token names) has its own migrations."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "backends.dashboard"
    label = "dashboard"
