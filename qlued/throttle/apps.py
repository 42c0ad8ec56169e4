from django.apps import AppConfig


class ThrottleConfig(AppConfig):
    name = "qlued.throttle"
    label = "throttle"
    verbose_name = "Failed token attempts"
    default_auto_field = "django.db.models.BigAutoField"
