"""Settings of the qlued service, all read from the environment (python-decouple).

Only this module reads the environment; the storage providers and the spooler
take everything as arguments. Values come from the process environment first,
then from the `.env` file at the repository root (`make setup` writes one with a
generated SECRET_KEY) or the file named by QLUED_ENV_FILE. A bad value stops the
start with ImproperlyConfigured, which manage.py and gunicorn show as one line.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from decouple import Config, Csv, RepositoryEmpty, RepositoryEnv
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _repository() -> RepositoryEnv | RepositoryEmpty:
    """The .env file (QLUED_ENV_FILE, or the one at the repository root when it exists)."""
    named = os.environ.get("QLUED_ENV_FILE", "")
    path = Path(named) if named else BASE_DIR / ".env"
    if not path.is_file():
        if named:
            raise ImproperlyConfigured(f"QLUED_ENV_FILE names no file: {named}.")
        return RepositoryEmpty()
    try:
        return RepositoryEnv(str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"Cannot read {path}: {exc}.") from None


config = Config(_repository())
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


def _bool(name: str, default: bool) -> bool:
    try:
        return bool(config(name, default=default, cast=bool))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be true or false.") from None


def _origin(name: str, value: str) -> str:
    """An origin or base URL: a scheme http or https and a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name} must start with http:// or https:// and name a host, not {value!r}."
        )
    return value


DEBUG = _bool("DEBUG", False)

SECRET_KEY = config("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Run `make setup` (it writes one into .env), "
            "set it in the environment, or set DEBUG=true for development."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = config("ALLOWED_HOSTS", default="127.0.0.1,localhost,[::1]", cast=Csv())
CSRF_TRUSTED_ORIGINS = [
    _origin("CSRF_TRUSTED_ORIGINS", origin)
    for origin in config("CSRF_TRUSTED_ORIGINS", default="", cast=Csv())
]


def _proxy_ssl_header() -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER as `HTTP_X_FORWARDED_PROTO,https`: the header a TLS proxy sets."""
    parts = config("SECURE_PROXY_SSL_HEADER", default="", cast=Csv())
    if not parts:
        return None
    if len(parts) != 2 or not re.fullmatch(r"HTTP_[A-Z0-9_]+", parts[0]) or not parts[1]:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be a header and its value, "
            "e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    return parts[0], parts[1]


# Behind a reverse proxy that terminates TLS (README, "Behind a TLS proxy").
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = _bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = int(_positive("SECURE_HSTS_SECONDS", 0, int))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", False)
# Plain-HTTP requests are redirected to https (the proxy usually does it first); the
# health probes are exempt, because load balancers probe over plain HTTP.
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]


def _proxies() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """TRUSTED_PROXIES: addresses or networks whose X-Forwarded-For is believed."""
    try:
        return [
            ipaddress.ip_network(item, strict=False)
            for item in config("TRUSTED_PROXIES", default="", cast=Csv())
        ]
    except ValueError:
        raise ImproperlyConfigured("TRUSTED_PROXIES must list IP addresses or networks.") from None


def _caches() -> tuple[dict, str]:
    """CACHE_URL (redis:// or rediss://): a cache shared by every worker and host, or none."""
    url = config("CACHE_URL", default="")
    if not url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}, ""
    if urlsplit(url).scheme not in ("redis", "rediss"):
        raise ImproperlyConfigured("CACHE_URL must be a redis:// or rediss:// URL.")
    redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    return {"default": redis}, "default"


# Wrong tokens one client address may present per minute before they answer 429 (0: no
# limit); counted in the database, or in the cache of CACHE_URL when there is one.
FAILED_TOKEN_ATTEMPTS_PER_MINUTE = int(_positive("FAILED_TOKEN_ATTEMPTS_PER_MINUTE", 30, int))
TRUSTED_PROXIES = _proxies()
CACHES, THROTTLE_CACHE = _caches()

# The contract's own settings (SPEC §3, §4).
BASE_URL = config("BASE_URL", default="").rstrip("/")
if BASE_URL:
    _origin("BASE_URL", BASE_URL)
DEFAULT_STORAGE = config("DEFAULT_STORAGE", default="alqor")
if not re.fullmatch(r"[a-z0-9]{1,100}", DEFAULT_STORAGE):
    raise ImproperlyConfigured(
        "DEFAULT_STORAGE must be a provider name: lowercase letters and digits."
    )
T_TIMEOUT = _positive("T_TIMEOUT", 300)
CACHE_SECONDS = _positive("CACHE_SECONDS", 2)
MAX_REQUEST_BYTES = int(_positive("MAX_REQUEST_BYTES", 10 * 1024 * 1024, int))
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES

# How long the service waits for a MongoDB server before answering 503 (seconds).
MONGODB_SERVER_SELECTION_TIMEOUT = _positive("MONGODB_SERVER_SELECTION_TIMEOUT", 3)
MONGODB_CONNECT_TIMEOUT = _positive("MONGODB_CONNECT_TIMEOUT", 3)
MONGODB_SOCKET_TIMEOUT = _positive("MONGODB_SOCKET_TIMEOUT", 10)

# Dropbox answers in hundreds of milliseconds: configs and the backend list are kept
# this long (seconds), far below T_TIMEOUT so that `operational` never lies for long.
DROPBOX_CACHE_SECONDS = _positive("DROPBOX_CACHE_SECONDS", min(5.0, T_TIMEOUT / 10))
if DROPBOX_CACHE_SECONDS * 10 > T_TIMEOUT:
    raise ImproperlyConfigured("DROPBOX_CACHE_SECONDS must be at most a tenth of T_TIMEOUT.")
DROPBOX_TIMEOUT = _positive("DROPBOX_TIMEOUT", 10)

# Per-user quotas on post_job (0: no limit); the admin's user quotas override them.
QUOTA_QUEUED_JOBS = int(_positive("QUOTA_QUEUED_JOBS", 100, int))
QUOTA_POSTS_PER_MINUTE = int(_positive("QUOTA_POSTS_PER_MINUTE", 120, int))

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
    "qlued.throttle",
    "backends.dashboard",
]

MIDDLEWARE = [
    "backends.metrics.RequestMetricsMiddleware",  # outermost: counts every answer
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
    except (ValueError, KeyError):
        raise ImproperlyConfigured(
            "DATABASE_URL is not a database URL: use sqlite:///PATH or "
            "postgres://USER:PASSWORD@HOST:PORT/NAME."
        ) from None
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db["CONN_MAX_AGE"] = 0 if db["NAME"] == ":memory:" else None
        db["CONN_HEALTH_CHECKS"] = False
        db["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            # FULL: a commit (the ledger row of an answered post) survives a power cut;
            # NORMAL in WAL mode may lose the last commits.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        }
        folder = Path(db["NAME"]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Cannot create {folder} for the SQLite database: {exc.strerror}."
            ) from None
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

LOG_LEVEL = config("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in logging.getLevelNamesMapping():
    raise ImproperlyConfigured("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL.")

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
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's own console handler, which would print lines twice, unredacted.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}


# The dashboard and /metrics (issue 16).
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:jobs"


def _networks(name: str, default: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A list of addresses or networks (`127.0.0.1,10.0.0.0/8`), refused loudly when bad."""
    try:
        return [
            ipaddress.ip_network(item, strict=False)
            for item in config(name, default=default, cast=Csv())
        ]
    except ValueError:
        raise ImproperlyConfigured(f"{name} must list IP addresses or networks.") from None


# A scraper of /metrics sends `Authorization: Bearer METRICS_TOKEN` or calls from one of
# METRICS_ALLOWED_ADDRESSES (behind a proxy, that is the proxy's address).
METRICS_TOKEN = config("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = _networks("METRICS_ALLOWED_ADDRESSES", "127.0.0.1,::1")
# Where every worker counts its requests (prometheus-client's multiprocess mode).
PROMETHEUS_MULTIPROC_DIR = Path(
    config("PROMETHEUS_MULTIPROC_DIR", default=str(DATA_DIR / "metrics"))
)
