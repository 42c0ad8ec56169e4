"""Settings of the qlued service, all read from the environment (python-decouple).

Only this module reads the environment; the storage providers and the spooler
take everything as arguments. A bad value stops the start with a clear message.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from decouple import Csv, UndefinedValueError, config
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(config("QLUED_DATA_DIR", default=str(BASE_DIR / "data")))


def _positive(name: str, default: float, cast: type = float) -> float:
    """A numeric setting that must be positive (zero allowed), refused loudly otherwise."""
    try:
        value = config(name, default=default, cast=cast)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number.") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative.")
    return value


try:
    DEBUG = config("DEBUG", default=False, cast=bool)
except ValueError:
    raise ImproperlyConfigured("DEBUG must be true or false.") from None

try:
    SECRET_KEY = config("SECRET_KEY")
except UndefinedValueError:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or DEBUG=true for development)."
        ) from None
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = config("ALLOWED_HOSTS", default="127.0.0.1,localhost,[::1]", cast=Csv())
CSRF_TRUSTED_ORIGINS = config("CSRF_TRUSTED_ORIGINS", default="", cast=Csv())

# The contract's own settings (SPEC §3, §4).
BASE_URL = config("BASE_URL", default="").rstrip("/")
DEFAULT_STORAGE = config("DEFAULT_STORAGE", default="alqor")
T_TIMEOUT = _positive("T_TIMEOUT", 300)
CACHE_SECONDS = _positive("CACHE_SECONDS", 2)
MAX_REQUEST_BYTES = int(_positive("MAX_REQUEST_BYTES", 10 * 1024 * 1024, int))
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES

# How long the service waits for a MongoDB server before answering 503 (seconds).
MONGODB_SERVER_SELECTION_TIMEOUT = _positive("MONGODB_SERVER_SELECTION_TIMEOUT", 3)
MONGODB_CONNECT_TIMEOUT = _positive("MONGODB_CONNECT_TIMEOUT", 3)
MONGODB_SOCKET_TIMEOUT = _positive("MONGODB_SOCKET_TIMEOUT", 10)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "backends",
]

MIDDLEWARE = [
    "backends.middleware.ApiEdgeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "qlued.urls"
WSGI_APPLICATION = "qlued.wsgi.application"
APPEND_SLASH = False  # an API path typed without a slash must not turn into a redirect

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    """DATABASE_URL, or an SQLite file in the data folder, tuned for several workers."""
    default_url = f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
    url = config("DATABASE_URL", default=default_url)
    try:
        db = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL ({exc}).") from None
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db["CONN_MAX_AGE"] = 0 if db["NAME"] == ":memory:" else None
        db["CONN_HEALTH_CHECKS"] = False
        db["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    return db


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(config("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG  # in development, no collectstatic needed

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "qlued.logs.RedactTokens"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_tokens"],
        },
    },
    "root": {"handlers": ["console"], "level": config("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Replaces Django's own console handler, which would print lines twice, unredacted.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
