from django.apps import AppConfig


class BackendsConfig(AppConfig):
    """The qlued API: storage providers, tokens, the job ledger and the v2 endpoints."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "backends"
