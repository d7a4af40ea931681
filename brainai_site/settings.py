"""Django settings, read from the environment (see README "Configuration").

Every variable goes through :mod:`brainai_site.env`, so a bad value raises
``ImproperlyConfigured`` naming the variable at start-up.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from brainai_site.env import env_bool, env_float, env_int, env_list, env_path, env_str, env_url
from brainai_site.storage import storages_from_env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("BRAINAI_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, else a key generated once into var/secret_key (embedded mode)."""
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters long")
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", []) if env_str("CSRF_TRUSTED_ORIGINS") else []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "scans",
]

MIDDLEWARE = [
    "brainai_site.middleware.ApiNotice",  # outermost, so a 413 carries the notice too
    "brainai_site.middleware.RequestTooLarge",  # refuses before anything reads the body
    "brainai_site.middleware.ContentSecurityPolicy",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "brainai_site.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: answers a lockout with 429
]

# Brute-force lockout (django-axes) of the login page, the admin login and the API token
# endpoint: BRAINAI_LOGIN_FAILURES failures for one username from one address lock that
# pair for BRAINAI_LOGIN_COOLOFF_MIN minutes. `manage.py axes_reset` lifts every lockout.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("BRAINAI_LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = env_int("BRAINAI_LOGIN_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("BRAINAI_LOGIN_COOLOFF_MIN", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # lockouts are still logged (a warning, the username masked)

ROOT_URLCONF = "brainai_site.urls"
WSGI_APPLICATION = "brainai_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- database -------------------------------------------------------------------------
_DEFAULT_DB = f"sqlite:///{VAR_DIR / 'brainai.sqlite3'}"
DATABASE_URL = env_url("DATABASE_URL", _DEFAULT_DB, schemes=("sqlite", "postgres", "postgresql", "pgsql"))
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
except ValueError as exc:  # the message of dj-database-url never echoes the password
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
# A persistent connection (CONN_MAX_AGE) is checked before the first query of each request
# or task (Celery's Django fixup closes unusable ones between tasks): after a database
# restart the next task reconnects instead of failing on the dead socket once and retrying.
_db["CONN_HEALTH_CHECKS"] = True
if _db["ENGINE"] == "django.db.backends.sqlite3":
    Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        # WAL lets the worker write while the web process reads; IMMEDIATE avoids
        # "database is locked" when a read transaction later wants to write.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so a Celery worker process in the e2e tests sees the rows.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test-brainai.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TZ", "UTC")
USE_I18N = True
USE_TZ = True

# --- static and media ----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env_path("BRAINAI_STATIC_ROOT", BASE_DIR / "staticfiles")
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [p for p in [BASE_DIR / "static"] if p.exists()]
# Without collectstatic (the embedded `make run`) WhiteNoise serves from the app folders;
# the Docker image runs collectstatic, and WhiteNoise serves STATIC_ROOT as well.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# Media is never served by URL prefix: brainai_site.media.serve_media checks the session.
MEDIA_ROOT = env_path("BRAINAI_MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "/media/"
# BRAINAI_S3_BUCKET set: media on S3 or an S3-compatible store (brainai_site.storage).
STORAGES = storages_from_env()
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("BRAINAI_UPLOAD_MAX_FILES", 2000, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # the health check and an in-network scraper speak plain HTTP
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["scans.api.permissions.IsClinicUser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("BRAINAI_API_PAGE_SIZE", 50, minimum=1),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per process (the default local-memory cache): a limit per gunicorn worker, not per site.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle",
                                 "rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": env_str("BRAINAI_API_RATE_ANON", "30/min"),
                               "user": env_str("BRAINAI_API_RATE_USER", "1200/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BrainAI API",
    "DESCRIPTION": "Brain-MRI triage decision support. Not for diagnostic use.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["scans.api.permissions.IsClinicUser"],  # schema and docs: clinic roles only
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ReportStatusEnum": "scans.models.choices.ReportStatus",
        "StudyStatusEnum": "scans.models.choices.StudyStatus",
        "ScanStatusEnum": "scans.models.choices.ScanStatus",
        "LabelEnum": "scans.models.choices.Label",
    },
}

# --- Celery --------------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ROUTES = {
    # The routine lane's step unless the sender names one (scans.services.priority: urgent 0,
    # routine 3, research 6, detail 9; docs/operations.md "Priority lanes").
    "workers.tasks.analyze_study": {"queue": "gpu", "priority": 3},
    "workers.tasks.analyze_detail": {"queue": "gpu"},  # sent at a low priority step (scans.services.detail)
    "workers.tasks.explain_report": {"queue": "llm"},
    "workers.tasks.finalize_report": {"queue": "default"},
    "workers.tasks.send_results": {"queue": "outbound"},  # results back to the PACS (scans.services.delivery)
    "workers.tasks.send_notification": {"queue": "outbound"},  # webhooks and e-mails (scans.services.notifications)
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_SEND_EVENTS", False)  # for flower

# --- BrainAI -------------------------------------------------------------------------------
BRAINAI_MODEL = env_str("BRAINAI_MODEL")  # None = ml.model.registry.default_model_name()
BRAINAI_MODEL_DIR = env_path("BRAINAI_MODEL_DIR", None)
BRAINAI_DATA_DIR = env_path("BRAINAI_DATA_DIR", None)
# Series rules (ml.study): a JSON file like ml/study/series_rules.json; None = the shipped default.
BRAINAI_SERIES_RULES = env_path("BRAINAI_SERIES_RULES", None)
BRAINAI_BATCH_SIZE = env_int("BRAINAI_BATCH_SIZE", 32, minimum=1)
BRAINAI_SALIENCY = env_bool("BRAINAI_SALIENCY", True)  # in the detail pass (scans.services.detail)
BRAINAI_DETAIL_SLICES = env_int("BRAINAI_DETAIL_SLICES", 8, minimum=0)  # slices given the detail pass on completion
BRAINAI_MAX_ATTEMPTS = env_int("BRAINAI_MAX_ATTEMPTS", 3, minimum=1)
# The operator's view flags a study in flight with no pipeline event for this many minutes.
BRAINAI_STUCK_AFTER_MIN = env_float("BRAINAI_STUCK_AFTER_MIN", 15.0, minimum=0.0)
BRAINAI_ANALYSIS_SOFT_LIMIT_S = env_int("BRAINAI_ANALYSIS_SOFT_LIMIT_S", 1800, minimum=10)
BRAINAI_LLM_SOFT_LIMIT_S = env_int("BRAINAI_LLM_SOFT_LIMIT_S", 180, minimum=10)
# The periodic sweep (celery beat -> workers.tasks.sweep_stalled, scans.services.housekeeping):
# every so often, work the database says is waiting and the broker does not hold is sent again.
BRAINAI_SWEEP_INTERVAL_S = env_int("BRAINAI_SWEEP_INTERVAL_S", 120, minimum=1)
# Retries of a task on a transient error (database or broker away), with exponential backoff
# and jitter (2 s doubling, at most 120 s each: 5 retries cover about a minute on average).
# Past them the work stays pending in the database and the sweep above sends it again.
BRAINAI_TASK_RETRIES = env_int("BRAINAI_TASK_RETRIES", 5, minimum=0)
# Detail passes are swept for slices analysed this recently only (bounds resending one that cannot run).
BRAINAI_DETAIL_SWEEP_WINDOW_S = env_int("BRAINAI_DETAIL_SWEEP_WINDOW_S", 3600, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "sweep-stalled": {"task": "workers.tasks.sweep_stalled", "schedule": float(BRAINAI_SWEEP_INTERVAL_S),
                      "options": {"queue": "default", "expires": float(BRAINAI_SWEEP_INTERVAL_S)}},
}
# Priority lanes (scans.services.priority, brainai_site.lanes): rules giving a study its lane
# at upload (JSON list, or @file), and the hours research work may start ("20-06"; empty = any).
BRAINAI_PRIORITY_RULES = env_str("BRAINAI_PRIORITY_RULES", "") or ""
BRAINAI_RESEARCH_HOURS = env_str("BRAINAI_RESEARCH_HOURS", "") or ""
try:
    from brainai_site.lanes import parse_hours, parse_rules

    parse_rules(BRAINAI_PRIORITY_RULES)
    parse_hours(BRAINAI_RESEARCH_HOURS)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
BRAINAI_LOW_CONFIDENCE = env_float("BRAINAI_LOW_CONFIDENCE", 0.80, minimum=0.0)
BRAINAI_UPLOAD_MAX_MB = env_int("BRAINAI_UPLOAD_MAX_MB", 1024, minimum=1)
# Whole request body, checked before it is read (brainai_site.middleware.RequestTooLarge): 413.
BRAINAI_REQUEST_MAX_MB = env_int("BRAINAI_REQUEST_MAX_MB", BRAINAI_UPLOAD_MAX_MB + 16, minimum=1)
BRAINAI_ZIP_MAX_MEMBERS = env_int("BRAINAI_ZIP_MAX_MEMBERS", 5000, minimum=1)
BRAINAI_ZIP_MAX_RATIO = env_int("BRAINAI_ZIP_MAX_RATIO", 200, minimum=1)
BRAINAI_ZIP_MAX_DEPTH = env_int("BRAINAI_ZIP_MAX_DEPTH", 2, minimum=1)  # ZIP levels: 2 = a ZIP in a ZIP
# Instances of one series in one upload (HTTP, DICOM listener, STOW-RS): a larger series is
# refused whole with the reason, the rest of the upload proceeds (mercure #49; the figure
# and why 4000: docs/operations.md "Large series").
BRAINAI_SERIES_MAX_INSTANCES = env_int("BRAINAI_SERIES_MAX_INSTANCES", 4000, minimum=1)

# The DICOM listener (`manage.py dicom_listener`, docs/integration.md "Receiving").
BRAINAI_DICOM_AE_TITLE = env_str("BRAINAI_DICOM_AE_TITLE", "BRAINAI")
BRAINAI_DICOM_HOST = env_str("BRAINAI_DICOM_HOST", "127.0.0.1")
BRAINAI_DICOM_PORT = env_int("BRAINAI_DICOM_PORT", 11112, minimum=0)  # 0 = a free port, printed at start
# Calling AE titles allowed to send, each optionally bound to an address: "MODALITY1,PACS@10.0.0.5".
# Empty = nobody: a listener that accepts any sender must be asked for by name ("*").
BRAINAI_DICOM_ALLOWED = env_list("BRAINAI_DICOM_ALLOWED", []) if env_str("BRAINAI_DICOM_ALLOWED") else []
BRAINAI_DICOM_STUDY_QUIET_S = env_float("BRAINAI_DICOM_STUDY_QUIET_S", 60.0, minimum=0.0)
# What one quiet period covers: "study" (all senders of a Study Instance UID together) or
# "ae_study" (each calling AE's part of a study on its own, as the MONAI Informatics Gateway).
BRAINAI_DICOM_GROUP_BY = env_str("BRAINAI_DICOM_GROUP_BY", "study")
if BRAINAI_DICOM_GROUP_BY not in ("study", "ae_study"):
    raise ImproperlyConfigured('BRAINAI_DICOM_GROUP_BY must be "study" or "ae_study"')
BRAINAI_DICOM_INBOX = env_path("BRAINAI_DICOM_INBOX", VAR_DIR / "dicom-inbox")
# Below this much free space in the inbox, instances are refused with 0xA700 (the sender retries).
BRAINAI_DICOM_MIN_FREE_MB = env_int("BRAINAI_DICOM_MIN_FREE_MB", 200, minimum=0)
if len(BRAINAI_DICOM_AE_TITLE) > 16 or not BRAINAI_DICOM_AE_TITLE.strip():
    raise ImproperlyConfigured("BRAINAI_DICOM_AE_TITLE must be 1 to 16 characters")

# Results back to the PACS (docs/integration.md "Sending results back"): attempts per study and
# destination (all files together), the first retry's delay (doubling after), and the time limit of one send.
BRAINAI_DELIVERY_MAX_ATTEMPTS = env_int("BRAINAI_DELIVERY_MAX_ATTEMPTS", 3, minimum=1)
BRAINAI_DELIVERY_RETRY_S = env_float("BRAINAI_DELIVERY_RETRY_S", 30.0, minimum=0.0)
BRAINAI_DELIVERY_TIMEOUT_S = env_float("BRAINAI_DELIVERY_TIMEOUT_S", 30.0, minimum=1.0)

# Notifications (docs/operations.md "Notifications"): webhooks and e-mails on awaiting_review,
# signed, amended and failed. Attempts per message, the first retry's delay (doubling after:
# 10, 20, 40 ... s, so 8 attempts span about 21 minutes), and the time limit of one send.
BRAINAI_NOTIFY_MAX_ATTEMPTS = env_int("BRAINAI_NOTIFY_MAX_ATTEMPTS", 8, minimum=1)
BRAINAI_NOTIFY_RETRY_S = env_float("BRAINAI_NOTIFY_RETRY_S", 10.0, minimum=0.0)
BRAINAI_NOTIFY_TIMEOUT_S = env_float("BRAINAI_NOTIFY_TIMEOUT_S", 10.0, minimum=0.5)
# The portal's address as readers reach it: the report link in a notification is built on it.
BRAINAI_PORTAL_URL = env_str("BRAINAI_PORTAL_URL", "http://localhost:8000").rstrip("/")
# E-mail (django.core.mail): the console backend (messages printed in the worker's log) unless
# EMAIL_BACKEND names another, e.g. django.core.mail.backends.smtp.EmailBackend with EMAIL_HOST ...
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", BRAINAI_NOTIFY_TIMEOUT_S, minimum=0.5)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "brainai@localhost")

# Prometheus metrics at /metrics (brainai_site/metrics.py, docs/operations.md "Monitoring"):
# open to the addresses or networks listed ("none": no address), or to
# "Authorization: Bearer <BRAINAI_METRICS_TOKEN>" from anywhere.
BRAINAI_METRICS_TOKEN = env_str("BRAINAI_METRICS_TOKEN", "")
BRAINAI_METRICS_ALLOW_IPS = env_list("BRAINAI_METRICS_ALLOW_IPS", ["127.0.0.1", "::1"])
# The timing histograms cover this many of the latest analysed slices (and explanations):
# a scrape reads them, so its cost stays bounded as the tables grow.
BRAINAI_METRICS_WINDOW = env_int("BRAINAI_METRICS_WINDOW", 10000, minimum=1)
if BRAINAI_METRICS_TOKEN and len(BRAINAI_METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("BRAINAI_METRICS_TOKEN must be at least 16 characters long")
for _entry in BRAINAI_METRICS_ALLOW_IPS:
    try:
        if _entry.lower() != "none":
            ipaddress.ip_network(_entry, strict=False)
    except ValueError:
        raise ImproperlyConfigured("BRAINAI_METRICS_ALLOW_IPS must list IP addresses or networks "
                                   f"(or 'none'); received {_entry!r}") from None

# LLM explanations: llm.LLMConfig checks its variables (BRAINAI_LLM_PROVIDER, GEMINI_API_KEY, ...).
try:
    from llm.config import LLMConfig

    BRAINAI_LLM = LLMConfig.from_env(os.environ)
except ValueError as exc:  # the message names the variable, never the key itself
    raise ImproperlyConfigured(str(exc)) from None

# Redis keeps unacknowledged tasks invisible this long before redelivery: longer than the
# hard time limit, or a long study would be delivered twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BRAINAI_ANALYSIS_SOFT_LIMIT_S * 2 + 600}

# e.g. DJANGO_SILENCED_CHECKS=brainai.E001 to start the web without model weights (dev only).
SILENCED_SYSTEM_CHECKS = env_list("DJANGO_SILENCED_CHECKS", [])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
