"""WSGI entry point (gunicorn qlued.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qlued.settings")
application = get_wsgi_application()
