#!/usr/bin/env python
"""Django's command-line utility for qlued."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qlued.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    # What an operator fixes in the settings or with `migrate` is one line, not a traceback.
    try:
        settings.SECRET_KEY  # noqa: B018 - loads the settings, so every command (help too) checks them
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        sys.exit(f"ImproperlyConfigured: {exc}")
    except DatabaseError as exc:
        reason = (str(exc).strip().splitlines() or ["no details"])[0]
        sys.exit(
            f"{type(exc).__name__}: {reason} (check DATABASE_URL; a new database needs "
            "`manage.py migrate`)"
        )


if __name__ == "__main__":
    main()
