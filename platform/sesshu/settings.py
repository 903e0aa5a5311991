"""Sesshu settings: everything comes from the environment (see sesshu.env).

Local development and tests override nothing here; they set environment variables (the
Makefile and tests/conftest.py do it). Production differs only in the values.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sesshu.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_optional,
    env_str,
    parse_database_url,
)
from sesshu.regions import ALLOWED_REGION, KMS_KEY_ARN_RE

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(env_str("SESSHU_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
TESTING = "pytest" in sys.modules or env_bool("SESSHU_TESTING", False)
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key" if DEBUG or TESTING else None)
if not (DEBUG or TESTING) and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("dev-only")):
    raise ImproperlyConfigured("SECRET_KEY must be a random value of at least 50 characters.")

# --- Hosts: <municipality>.<base domain> for residents and staff, platform.<base> for vendors
SESSHU_BASE_DOMAIN = env_str("SESSHU_BASE_DOMAIN", "localhost").lower()
SESSHU_PLATFORM_HOST = f"platform.{SESSHU_BASE_DOMAIN}"
SESSHU_PUBLIC_PORT = env_optional("SESSHU_PUBLIC_PORT")  # shown in printed URLs only
ALLOWED_HOSTS = [f".{SESSHU_BASE_DOMAIN}", SESSHU_BASE_DOMAIN] + env_list("EXTRA_ALLOWED_HOSTS")
SESSHU_HTTPS = env_bool("SESSHU_HTTPS", not (DEBUG or TESTING))

# --- Applications -------------------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",
    "sesshu",
    "tenants",
    "audit.platform",
    "controlplane",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "audit",
    "booking",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Municipality"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "sesshu.urls_public"
ROOT_URLCONF = "sesshu.urls_tenant"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
TENANT_LIMIT_SET_CALLS = True
TENANT_CREATION_FAKES_MIGRATIONS = False
# Passes over a schema with nothing to apply in one query (see tenants/db/migrate.py).
TENANT_BASE_MIGRATE_COMMAND = "tenants.db.migrate.Command"
# Visits only the schemas that exist (a decommissioned municipality's was dropped).
GET_EXECUTOR_FUNCTION = "tenants.db.migrate.executor_for"

MIDDLEWARE = [
    "sesshu.health.HealthMiddleware",
    "sesshu.logs.RequestContextMiddleware",
    "sesshu.proxy.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.TenantHostMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "sesshu.errors.MethodNotAllowedPageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sesshu.middleware.SecurityHeadersMiddleware",
    "audit.middleware.RefusalAuditMiddleware",
    "booking.resident.waiting_room.WaitingRoomMiddleware",
]
CSRF_FAILURE_VIEW = "audit.middleware.csrf_failure"

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
                "django.template.context_processors.i18n",
            ],
        },
    }
]
WSGI_APPLICATION = "sesshu.wsgi.application"

# --- Database -----------------------------------------------------------------------------
SESSHU_DB_APP_ROLE = env_str("SESSHU_DB_APP_ROLE", "sesshu")
_database_url = env_optional("DATABASE_URL")
DATABASE_ADMIN_URL = env_optional("DATABASE_ADMIN_URL")
if _database_url is None:
    from sesshu.devdb import EMBEDDED_DATABASE, app_url_from_admin, embedded_admin_url

    DATABASE_ADMIN_URL = embedded_admin_url(VAR_DIR / "pgdata")
    _database_url = app_url_from_admin(
        DATABASE_ADMIN_URL, role=SESSHU_DB_APP_ROLE, database=EMBEDDED_DATABASE
    )
_database = parse_database_url("DATABASE_URL", _database_url)
_database_options = dict(_database.pop("OPTIONS"))  # type: ignore[call-overload]
_database_options["application_name"] = "sesshu"
if env_bool("DATABASE_POOL", False):
    # Django's own psycopg pool (session-level SET ROLE and search_path are safe there;
    # PgBouncer in transaction mode is not: it hands a session's settings to another client).
    _database_options["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN", 2, minimum=0),
        "max_size": env_int("DATABASE_POOL_MAX", 10, minimum=1),
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10, minimum=1),
    }
DATABASES = {
    "default": {
        **_database,
        "ENGINE": "tenants.db.backend",
        "OPTIONS": _database_options,
        "CONN_MAX_AGE": 0 if "pool" in _database_options else env_int("CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        # One test database per test process, so two runs on one machine never share one.
        "TEST": {"NAME": env_str("TEST_DATABASE_NAME", f"test_{_database['NAME']}_{os.getpid()}")},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, sessions ----------------------------------------------------------------------
REDIS_URL = env_optional("REDIS_URL")
# A Redis that stops answering (a failover, a partition) must not hold a page, and the worker
# serving it, for ever: connecting and every command give up after this long. Commands take
# about a millisecond; the pages that can do without the cache do (sesshu.redis_cache).
SESSHU_REDIS_TIMEOUT_SECONDS = env_int("SESSHU_REDIS_TIMEOUT_MS", 1000, minimum=10) / 1000
SESSHU_REDIS_OPTIONS = {
    "socket_connect_timeout": SESSHU_REDIS_TIMEOUT_SECONDS,
    "socket_timeout": SESSHU_REDIS_TIMEOUT_SECONDS,
}
CACHES = {
    "default": (
        {
            "BACKEND": "sesshu.redis_cache.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": SESSHU_REDIS_OPTIONS,
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
    | {
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}
SESSION_ENGINE = "sesshu.session_store"  # database sessions (sesshu/session_store.py)
SESSION_COOKIE_AGE = env_int("SESSION_ABSOLUTE_SECONDS", 8 * 3600, minimum=300)
SESSHU_SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60, minimum=60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SESSHU_HTTPS
CSRF_COOKIE_SECURE = SESSHU_HTTPS
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = 63072000 if SESSHU_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SESSHU_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SESSHU_HTTPS else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# How many proxies in front of the app append to X-Forwarded-For (the ALB: 1).
SESSHU_TRUSTED_PROXY_COUNT = env_int("SESSHU_TRUSTED_PROXY_COUNT", 0, minimum=0)

# --- Passwords: argon2id sized so a login rush cannot exhaust memory (SECURITY.md) --------
PASSWORD_HASHERS = ["sesshu.passwords.SizedArgon2PasswordHasher"]
if TESTING:
    PASSWORD_HASHERS.append("django.contrib.auth.hashers.MD5PasswordHasher")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
OTP_TOTP_ISSUER = "Sesshu"

# --- Language and time --------------------------------------------------------------------
LANGUAGE_CODE = "ja"
# Each language named in itself, as a language menu must be.
LANGUAGES = [("ja", "日本語"), ("en", "English")]
# The booking app's catalogue is in booking/locale; every other app's strings in locale/.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Keys and AWS (Tokyo only: sesshu.regions refuses anything else) ----------------------
SESSHU_KEY_PROVIDER = env_choice("SESSHU_KEY_PROVIDER", ("local", "aws-kms"), "local")
SESSHU_LOCAL_MASTER_KEY = env_optional("SESSHU_LOCAL_MASTER_KEY")
if SESSHU_KEY_PROVIDER == "local":
    if SESSHU_LOCAL_MASTER_KEY is None:
        if not (DEBUG or TESTING):
            raise ImproperlyConfigured(
                "SESSHU_KEY_PROVIDER=local needs SESSHU_LOCAL_MASTER_KEY outside development."
            )
        SESSHU_LOCAL_MASTER_KEY = base64.b64encode(b"sesshu-development-master-key-32").decode()
    elif len(base64.b64decode(SESSHU_LOCAL_MASTER_KEY)) != 32:
        raise ImproperlyConfigured("SESSHU_LOCAL_MASTER_KEY must be base64 of 32 bytes.")
SESSHU_KMS_KEY_ID = env_optional("SESSHU_KMS_KEY_ID")
if SESSHU_KEY_PROVIDER == "aws-kms" and not SESSHU_KMS_KEY_ID:
    raise ImproperlyConfigured("SESSHU_KEY_PROVIDER=aws-kms needs SESSHU_KMS_KEY_ID.")
SESSHU_DATA_KEY_TTL = env_int("SESSHU_DATA_KEY_TTL", 300, minimum=1)
# While KMS cannot be reached, an expired plain key is served this much longer (0: never).
SESSHU_DATA_KEY_GRACE = env_int("SESSHU_DATA_KEY_GRACE", 900, minimum=0)
# How long a process remembers which municipality a host names (tenants.hosts); the tests
# see every change at once, except those of the cache itself.
SESSHU_TENANT_CACHE_SECONDS = env_int("SESSHU_TENANT_CACHE_SECONDS", 0 if TESTING else 5, minimum=0)
# The waiting room (booking.resident.waiting_room): newcomers let into each municipality's
# resident pages per minute, in order; 0 lets everyone in (development, tests). Sized to what
# the web pods serve (scripts/bench/README.md): k8s/base sets it.
SESSHU_WAITING_ROOM_PER_MINUTE = env_int("SESSHU_WAITING_ROOM_PER_MINUTE", 0, minimum=0)
SESSHU_WAITING_ROOM_MAX_WAIT_MINUTES = env_int(
    "SESSHU_WAITING_ROOM_MAX_WAIT_MINUTES", 120, minimum=1
)
AWS_REGION = env_str("AWS_REGION", "ap-northeast-1")
SESSHU_KMS_REGION = env_optional("SESSHU_KMS_REGION")
SESSHU_SES_REGION = env_optional("SESSHU_SES_REGION")
SESSHU_SNS_REGION = env_optional("SESSHU_SNS_REGION")
AWS_ENDPOINT_URL = env_optional("AWS_ENDPOINT_URL")
AWS_ACCESS_KEY_ID = env_optional("AWS_ACCESS_KEY_ID")
AWS_SECRET_ACCESS_KEY = env_optional("AWS_SECRET_ACCESS_KEY")

# --- File storage: S3 in production, a local folder otherwise; paths carry the tenant ----
AWS_STORAGE_BUCKET_NAME = env_optional("AWS_STORAGE_BUCKET_NAME")
# django-storages builds its own boto3 client (not sesshu.aws.client): with S3 storage its
# region is always set, to Tokyo unless said otherwise (and then the region guard refuses).
AWS_S3_REGION_NAME = (
    env_str("AWS_S3_REGION_NAME", ALLOWED_REGION)
    if AWS_STORAGE_BUCKET_NAME
    else env_optional("AWS_S3_REGION_NAME")
)
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {
        "BACKEND": "tenants.storage.TenantS3Storage"
        if AWS_STORAGE_BUCKET_NAME
        else "tenants.storage.TenantFileSystemStorage"
    },
    # Served by the app itself (whitenoise) from the image's collected files: no bucket and
    # no third-party host in a resident's page.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if AWS_STORAGE_BUCKET_NAME:
    # Without a key id, "aws:kms" means the AWS-managed aws/s3 key, which the bucket policy
    # refuses: the customer-managed storage key's ARN (terraform output STORAGE_KMS_KEY_ARN)
    # is required, as an ARN because that is what the bucket policy compares.
    AWS_S3_SSE_KMS_KEY_ID = env_str("AWS_S3_SSE_KMS_KEY_ID")
    if not KMS_KEY_ARN_RE.fullmatch(AWS_S3_SSE_KMS_KEY_ID):
        raise ImproperlyConfigured(
            f"AWS_S3_SSE_KMS_KEY_ID={AWS_S3_SSE_KMS_KEY_ID!r} is not a KMS key ARN"
            " (arn:aws:kms:ap-northeast-1:<account>:key/<key id>; no alias: the bucket policy"
            " compares the key ARN)."
        )
    AWS_S3_OBJECT_PARAMETERS = {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": AWS_S3_SSE_KMS_KEY_ID,
    }
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    AWS_S3_ENDPOINT_URL = AWS_ENDPOINT_URL

# --- Audit anchors: chain heads copied to the Object Lock bucket (audit.anchors) ----------
# Terraform output AUDIT_ANCHOR_BUCKET; unset (development, tests): no anchoring, and
# audit_verify says it did not compare with an anchor.
SESSHU_AUDIT_ANCHOR_BUCKET = env_optional("SESSHU_AUDIT_ANCHOR_BUCKET")
SESSHU_AUDIT_ANCHOR_SECONDS = env_int("SESSHU_AUDIT_ANCHOR_SECONDS", 900, minimum=60)

# --- Celery: every task carries its tenant (tenant-schemas-celery) ------------------------
CELERY_BROKER_URL = env_optional("CELERY_BROKER_URL")
# The broker is Redis (ElastiCache): without socket timeouts, a publish to one that stops
# answering waits for ever, and with it the page that published after its commit (a booking's
# confirmation). Longer than the one-second BRPOP a worker waits on. Two tries at most; what
# was not published, the sweepers find (sesshu.outages).
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 2}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None  # no broker: tasks run in-process
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_optional("CELERY_RESULT_BACKEND")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "notifications-sweep": {"task": "booking.notifications_sweep_all", "schedule": 60.0},
    "reminders-queue": {"task": "booking.reminders_queue_all", "schedule": 600.0},
    "audit-seal": {"task": "audit.seal_all", "schedule": 30.0},
    "audit-anchor": {"task": "audit.anchor_all", "schedule": float(SESSHU_AUDIT_ANCHOR_SECONDS)},
    # Resumes an import whose worker or command died (its heartbeat is 5 minutes stale).
    "registry-imports-resume": {"task": "booking.registry_imports_resume_all", "schedule": 300.0},
    # Cancels unconfirmed previews and deletes expired error and activation-code files.
    "registry-imports-upkeep": {"task": "booking.registry_imports_upkeep_all", "schedule": 3600.0},
    # Deletes expired sessions, and the rows that tied ended ones to a resident or staff.
    "sessions-clear": {"task": "booking.sessions_clear_all", "schedule": 3600.0},
    # The control plane's counts, among them what needs the vendor's attention (failed or
    # stalled imports, a municipality with no admin who can sign in): hourly, and on demand.
    "municipality-stats": {
        "task": "tenants.tasks.municipality_stats_refresh_all",
        "schedule": 3600.0,
    },
}

# --- Notifications -----------------------------------------------------------------------
SESSHU_NOTIFICATION_BACKEND = env_choice(
    "SESSHU_NOTIFICATION_BACKEND", ("console", "aws"), "console"
)
SESSHU_NOTIFICATION_EMAIL_FROM = env_optional("SESSHU_NOTIFICATION_EMAIL_FROM")
if SESSHU_NOTIFICATION_BACKEND == "aws" and not SESSHU_NOTIFICATION_EMAIL_FROM:
    raise ImproperlyConfigured(
        "SESSHU_NOTIFICATION_BACKEND=aws needs SESSHU_NOTIFICATION_EMAIL_FROM."
    )
SESSHU_LINE_API_BASE = env_str("SESSHU_LINE_API_BASE", "https://api.line.me")
SESSHU_LINE_ACCESS_BASE = env_str("SESSHU_LINE_ACCESS_BASE", "https://access.line.me")
SESSHU_NOTIFICATION_RATES = {
    "ses": env_int("SESSHU_SES_PER_SECOND", 14, minimum=1),
    "sns": env_int("SESSHU_SNS_PER_SECOND", 20, minimum=1),
    "line": env_int("SESSHU_LINE_PER_SECOND", 500, minimum=1),
}
SESSHU_NOTIFICATION_CLAIM_SECONDS = env_int("SESSHU_NOTIFICATION_CLAIM_SECONDS", 120, minimum=10)

# --- Staff e-mail (console invitations): Django's mail API ------------------------------
# Residents' messages go through the notification outbox; a staff invitation is sent with
# django.core.mail through this backend (pytest-django swaps in the locmem backend). The
# timeout keeps a dead mail server from holding the admin's request: the link is on screen.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG or TESTING
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_optional("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = env_optional("EMAIL_HOST_PASSWORD") or ""  # or EMAIL_HOST_PASSWORD_FILE
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str(
    "DEFAULT_FROM_EMAIL", SESSHU_NOTIFICATION_EMAIL_FROM or f"no-reply@{SESSHU_BASE_DOMAIN}"
)

# --- Registry imports ------------------------------------------------------------------------
# Processes that parse, validate and seal a registry file; 0: one per core.
SESSHU_REGISTRY_PROCESSES = env_int("SESSHU_REGISTRY_PROCESSES", 0, minimum=0)
# Database connections that apply a confirmed import's batches at once (threads of the task).
SESSHU_REGISTRY_APPLY_CONNECTIONS = env_int("SESSHU_REGISTRY_APPLY_CONNECTIONS", 2, minimum=1)
# Days a preview waits for its confirmation; then it is cancelled and its upload deleted.
SESSHU_REGISTRY_PREVIEW_DAYS = env_int("SESSHU_REGISTRY_PREVIEW_DAYS", 7, minimum=1)

# --- Sentry (scrubbed; sesshu.observability) ----------------------------------------------
SENTRY_DSN = env_optional("SENTRY_DSN")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production")

# One JSON object per line on stdout, with the request or task and its tenant, nothing
# personal (sesshu.logs). Importing it here also hooks Celery's logging and task signals in
# every process that loads these settings: web, worker, beat.
from sesshu.logs import LOG_LEVELS, logging_config  # noqa: E402

LOGGING = logging_config(level=env_choice("LOG_LEVEL", LOG_LEVELS, "INFO"))

from sesshu.observability import init_sentry  # noqa: E402

init_sentry(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT)
