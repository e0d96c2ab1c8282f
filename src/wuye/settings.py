"""Django settings for Wuye.

Everything an operator sets comes from the environment:

- ``DATABASE_URL``: e.g. ``postgres://user@127.0.0.1:5432/wuye``; default SQLite in the data dir.
- ``WUYE_DATA_DIR``: where the SQLite database, keys and uploads live (default ``./var``).
- ``WUYE_SECRET_KEY`` / ``WUYE_FIELD_KEY``: Django's secret and the Fernet key that encrypts
  sensitive fields (ID-card numbers, terminal keys). When unset they are generated once and kept
  in the data dir with mode 0600, which is the safe default for the demo.
- ``WUYE_DEBUG``: ``1`` for development.
- ``WUYE_TASK_BACKEND``: ``immediate`` (in-process) or ``database`` (``wuye worker`` runs them).
- ``WUYE_CACHE_URL``: a Redis URL for the shared cache and cached sessions (default: none,
  database sessions).
"""

from __future__ import annotations

import importlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("WUYE_DATA_DIR", Path.cwd() / "var")).resolve()


def _secret_from_env_or_file(env_name: str, file_name: str, make: Callable[[], str]) -> str:
    """Return the secret from the environment, or from the data dir, creating it once."""
    value = os.environ.get(env_name)
    if value:
        return value
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / file_name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


SECRET_KEY = _secret_from_env_or_file(
    "WUYE_SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50)
)
# Fernet key(s) for field encryption; comma-separated to allow rotation (first one encrypts).
FIELD_ENCRYPTION_KEYS = _secret_from_env_or_file(
    "WUYE_FIELD_KEY", "field_key", lambda: Fernet.generate_key().decode()
).split(",")

DEBUG = os.environ.get("WUYE_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("WUYE_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("WUYE_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks",
    "django_tasks_db",
    "wuye.core",
    "wuye.accounts",
    "wuye.estates",
    "wuye.merchants",
    "wuye.ledger",
    "wuye.billing",
    "wuye.payments",
    "wuye.receipts",
    "wuye.counter",
    "wuye.imports",
    "wuye.channels.card",
    "wuye.channels.qrpay",
    "wuye.channels.wechat",
    "wuye.channels.alipay",
    "wuye.terminals",
    "wuye.posterm",
    "wuye.notices",
    "wuye.reconciliation",
    "wuye.sims",
    "wuye.web",
    "wuye.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "wuye.core.middleware.ChineseFirstMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Sessions (docs/payments-speed.md, "Sessions"). With WUYE_CACHE_URL set to a Redis URL
# (e.g. redis://127.0.0.1:6379/0, shared by every worker and server) sessions are read from
# that cache and written through to the database (``cached_db``): a logged-in request no
# longer queries the session table, and a logout or password change deletes the session from
# the one cache every worker reads. Unset (the SQLite demo, tests): database sessions and
# Django's default cache, as before. Never a per-process cache for sessions: a logout in one
# worker would leave the session valid in the others.
_cache_url = os.environ.get("WUYE_CACHE_URL", "")
if _cache_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
            "KEY_PREFIX": "wuye",
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

ROOT_URLCONF = "wuye.urls"
WSGI_APPLICATION = "wuye.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'wuye.sqlite3'}"),
        conn_max_age=int(os.environ.get("WUYE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL with full sync: durable commits without the rollback journal's 30x cost.
    # IMMEDIATE transactions take the write lock up front, so two writers queue instead
    # of failing with "database is locked" half-way through.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
        "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=20000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        os.environ.get("WUYE_TEST_SQLITE", "") or None
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django turns psycopg's prepared statements off (prepare_threshold None) for the sake of
    # poolers in transaction mode. Its own cursors bind client-side and never prepare anyway;
    # this lets the few statements that ask for it (payments.posting's checkout, the payments
    # API) be parsed and planned once per connection instead of on every payment. Behind
    # PgBouncer in transaction mode, set its max_prepared_statements (1.21+) or
    # WUYE_PG_PREPARE=0.
    # Their plans are generic (made once): planning the checkout's writes anew for every
    # payment cost more server CPU than running them. plan_cache_mode touches prepared
    # statements only, so Django's own queries are planned as before.
    if os.environ.get("WUYE_PG_PREPARE", "1") != "0":
        pg_options = DATABASES["default"].setdefault("OPTIONS", {})
        pg_options["prepare_threshold"] = 5
        pg_options["options"] = (
            pg_options.get("options", "") + " -c plan_cache_mode=force_generic_plan"
        ).strip()

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("WUYE_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = DATA_DIR / "media"
FILE_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Payment channels (wuye.channels.registry): dotted paths of Channel subclasses.
WUYE_CHANNELS = [
    "wuye.channels.cash.adapter.CashChannel",
    "wuye.channels.prepaid.adapter.PrepaidChannel",
]
# Allocation of a partial payment: late fee before principal (False: principal first).
WUYE_ALLOCATE_LATE_FEE_FIRST = True

# Per-part settings live in wuye/conf/<part>.py: their CHANNELS join WUYE_CHANNELS and their
# other upper-case names become settings here.
for _part in ("card", "qrpay", "wechat", "alipay", "terminal", "acquirer", "reconciliation"):
    _conf = importlib.import_module(f"wuye.conf.{_part}")
    WUYE_CHANNELS += list(getattr(_conf, "CHANNELS", []))
    globals().update(
        {k: v for k, v in vars(_conf).items() if k.isupper() and k != "CHANNELS"}
    )

_task_backend = os.environ.get("WUYE_TASK_BACKEND", "immediate")
TASKS = {
    "default": {
        "BACKEND": (
            "django_tasks_db.DatabaseBackend"
            if _task_backend == "database"
            else "django_tasks.backends.immediate.ImmediateBackend"
        )
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("WUYE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
