"""The one settings module. Every value comes from the environment (see README's table).

Defaults describe the embedded mode of `make run`: SQLite, an in-memory channel
layer, Celery tasks run in-process, a local-memory cache. Setting REDIS_URL and
DATABASE_URL switches to the production layout; nothing else needs to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import django_stubs_ext
from celery.schedules import crontab
from kombu import Queue

from wechat_core.env import (
    env_bool,
    env_choice,
    env_db,
    env_float,
    env_int,
    env_list,
    env_str,
    read_dotenv,
)

# Lets admin.ModelAdmin[Model] and similar generics be subscripted at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
# KEY=value lines that do not override the environment; DOTENV_FILE="" skips it.
DOTENV_FILE = env_str("DOTENV_FILE", default=str(BASE_DIR / ".env"))
if DOTENV_FILE:
    read_dotenv(Path(DOTENV_FILE))

# --- Core -------------------------------------------------------------------
SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])
# Browser origins allowed on websockets besides ALLOWED_HOSTS (e.g. http://chat.example.com:8080).
WEBSOCKET_ALLOWED_ORIGINS = env_list("WEBSOCKET_ALLOWED_ORIGINS", default=[])
# How many reverse proxies sit in front of us; 0 means REMOTE_ADDR is the client.
NUM_PROXIES = env_int("NUM_PROXIES", default=0, minimum=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "wechat_core",
    "accounts",
    "messaging",
    "publicplatform",
    "grayrelease",
    "monitoring",
    "redpackets",
]

MIDDLEWARE = [
    # Outermost, so it times and counts everything below it, static files included.
    "wechat_core.instrument.http.MonitoringMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Sync-only and innermost on purpose: under ASGI it makes every middleware
    # above run synchronously in one thread. Otherwise each of Django's
    # middleware hops between the event loop and a thread twice per request,
    # which made a request ~2 ms slower here (docs/performance.md).
    "wechat_core.middleware.RequestBodyLimitMiddleware",
]

ROOT_URLCONF = "wechat_core.urls"
ASGI_APPLICATION = "wechat_core.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Database -----------------------------------------------------------------
DATABASES = {
    "default": env_db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request gets its own thread, so persistent per-thread
    # connections pile up; psycopg's pool bounds them instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", default=2, minimum=0),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", default=20, minimum=1),
        "timeout": env_float("DATABASE_POOL_TIMEOUT", default=10.0, minimum=0.1),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web client read while a write is in flight in embedded mode.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )

# --- Redis: cache, channel layer, Celery broker ------------------------------------
# Empty REDIS_URL means the embedded mode: everything stays inside one process.
REDIS_URL = env_str("REDIS_URL", default="")
EMBEDDED = not REDIS_URL
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", default="wechat")

CACHES: dict[str, dict[str, Any]]
CHANNEL_LAYERS: dict[str, dict[str, Any]]
if EMBEDDED:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            # One hub channel per process carries every group (wechat_core.realtime),
            # and a hub stays in a group for as long as anyone listens.
            "CONFIG": {"capacity": 100_000, "group_expiry": 10 * 365 * 86400},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: a group is a Redis channel the process hubs subscribe to;
            # nothing expires, and the subscriptions come back after a Redis restart.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 1}],
                "prefix": f"{CACHE_KEY_PREFIX}:asgi",
            },
        }
    }

# How often an ASGI process retries failed group joins and leaves groups that
# none of its connections listens to any more (wechat_core.realtime).
REALTIME_HOUSEKEEPING_SECONDS = env_float(
    "REALTIME_HOUSEKEEPING_SECONDS", default=10.0, minimum=0.05
)

# --- Celery (queues of DESIGN.md §3) -------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", default=REDIS_URL or "cache+memory://")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=EMBEDDED)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_QUEUE_NAMES = (
    "delivery",
    "replay",
    "webhook",
    "payout_fast",
    "payout_slow",
    "monitoring",
    "default",
)
CELERY_TASK_QUEUES = tuple(Queue(name) for name in CELERY_QUEUE_NAMES)
CELERY_TASK_ROUTES = {
    "messaging.tasks.*": {"queue": "delivery"},
    "publicplatform.tasks.*": {"queue": "webhook"},
    "monitoring.tasks.*": {"queue": "monitoring"},
}
# Without Celery beat (the embedded mode) a thread of the ASGI process runs
# CELERY_BEAT_SCHEDULE (wechat_core.embedded_beat). One process only.
EMBEDDED_BEAT = env_bool("EMBEDDED_BEAT", default=EMBEDDED)
CELERY_BEAT_SCHEDULE = {
    "expire-friend-requests": {
        "task": "accounts.tasks.expire_friend_requests",
        "schedule": crontab(minute="*/10"),
    },
    "purge-dead-tickets": {
        "task": "accounts.tasks.purge_dead_tickets",
        "schedule": crontab(minute=17, hour="*/6"),
    },
}

# --- Topology: where this process runs (DESIGN.md §8, §9) ----------------------
DATACENTER = env_str("DATACENTER", default="sh")
CAMPUS = env_str("CAMPUS", default="sh-a")
# How stale a process's copy of shared switches (campus blocks, ticket
# revocations) may get: each process re-reads a version stamp this often.
SHARED_STATE_POLL_SECONDS = env_float("SHARED_STATE_POLL_SECONDS", default=0.2, minimum=0.01)

# --- Serving ------------------------------------------------------------------
# uvicorn measured faster for websockets and HTTP here (docs/performance.md).
ASGI_SERVER = env_choice("ASGI_SERVER", default="uvicorn", choices=("daphne", "uvicorn"))
HOST = env_str("HOST", default="127.0.0.1")
PORT = env_int("PORT", default=8000, minimum=1)
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", default=1, minimum=1)
# permessage-deflate (uvicorn only) shrinks big sync pages on the wire but keeps
# zlib state of about 38 KiB per idle websocket (docs/performance.md).
WEBSOCKET_COMPRESSION = env_bool("WEBSOCKET_COMPRESSION", default=False)
# uvicorn's websocket protocol: wsproto holds an idle link in the least memory and
# sends as fast as the others (docs/performance.md, idle connections).
UVICORN_WEBSOCKET_PROTOCOL = env_choice(
    "UVICORN_WEBSOCKET_PROTOCOL",
    default="wsproto",
    choices=("wsproto", "websockets-sansio", "websockets"),
)

# --- Accounts, tickets, login protection -----------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.AccountBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_MAX_LENGTH = env_int("PASSWORD_MAX_LENGTH", default=128, minimum=16)
DEFAULT_PHONE_REGION = env_str("DEFAULT_PHONE_REGION", default="CN")
TICKET_TTL_SECONDS = env_int("TICKET_TTL_SECONDS", default=30 * 24 * 3600, minimum=1)
TICKET_CACHE_MAX_ENTRIES = env_int("TICKET_CACHE_MAX_ENTRIES", default=100_000, minimum=0)
LOGIN_ACCOUNT_MAX_FAILURES = env_int("LOGIN_ACCOUNT_MAX_FAILURES", default=5, minimum=1)
LOGIN_IP_MAX_FAILURES = env_int("LOGIN_IP_MAX_FAILURES", default=50, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", default=900, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", default=900, minimum=1)
REGISTRATIONS_PER_IP_PER_HOUR = env_int("REGISTRATIONS_PER_IP_PER_HOUR", default=20, minimum=1)
DEVICES_PER_USER_MAX = env_int("DEVICES_PER_USER_MAX", default=20, minimum=1)
WECHAT_ID_RESERVED = frozenset(
    name.lower()
    for name in env_list(
        "WECHAT_ID_RESERVED",
        default=["admin", "administrator", "system", "support", "wechat", "weixin", "monitoring"],
    )
)

# --- Profile and contacts limits (maximums are the database columns' sizes) -----
NICKNAME_MAX_LENGTH = env_int("NICKNAME_MAX_LENGTH", default=32, minimum=1, maximum=64)
SIGNATURE_MAX_LENGTH = env_int("SIGNATURE_MAX_LENGTH", default=120, minimum=1, maximum=200)
REGION_MAX_LENGTH = env_int("REGION_MAX_LENGTH", default=64, minimum=1, maximum=64)
AVATAR_MAX_BYTES = env_int("AVATAR_MAX_BYTES", default=2 * 1024 * 1024, minimum=1024)
AVATAR_MAX_PIXELS = env_int("AVATAR_MAX_PIXELS", default=4096 * 4096, minimum=1)
FRIEND_LIMIT = env_int("FRIEND_LIMIT", default=5000, minimum=1)
FRIEND_REQUEST_TTL_SECONDS = env_int("FRIEND_REQUEST_TTL_SECONDS", default=7 * 24 * 3600, minimum=1)
FRIEND_REQUEST_GREETING_MAX_LENGTH = env_int(
    "FRIEND_REQUEST_GREETING_MAX_LENGTH", default=100, minimum=1, maximum=200
)
FRIEND_REMARK_MAX_LENGTH = env_int("FRIEND_REMARK_MAX_LENGTH", default=32, minimum=1, maximum=64)
CONTACT_SEARCHES_PER_MINUTE = env_int("CONTACT_SEARCHES_PER_MINUTE", default=30, minimum=1)
FRIEND_REQUESTS_PER_DAY = env_int("FRIEND_REQUESTS_PER_DAY", default=100, minimum=1)

# --- Messaging (DESIGN.md §4) ----------------------------------------------------------
# Conversations with more members than this deliver in Celery (queue `delivery`).
MESSAGING_INLINE_DELIVERY_MAX_MEMBERS = env_int(
    "MESSAGING_INLINE_DELIVERY_MAX_MEMBERS", default=50, minimum=2
)
MESSAGING_DELIVERY_BATCH = env_int("MESSAGING_DELIVERY_BATCH", default=200, minimum=1)
# Celery beat sweeps this often for conversations whose delivery lags this long (lost tasks).
MESSAGING_DELIVERY_SWEEP_SECONDS = env_int(
    "MESSAGING_DELIVERY_SWEEP_SECONDS", default=60, minimum=1
)
CELERY_BEAT_SCHEDULE["sweep-lagging-deliveries"] = {
    "task": "messaging.tasks.sweep_lagging_deliveries",
    "schedule": float(MESSAGING_DELIVERY_SWEEP_SECONDS),
}
MESSAGING_TEXT_MAX_CHARS = env_int("MESSAGING_TEXT_MAX_CHARS", default=4000, minimum=1)
MESSAGING_MENTIONS_MAX = env_int("MESSAGING_MENTIONS_MAX", default=50, minimum=0)
MESSAGING_SENDS_PER_MINUTE = env_int("MESSAGING_SENDS_PER_MINUTE", default=600, minimum=1)
# The window MESSAGING_SENDS_PER_MINUTE counts in (60 s; shorter for drills and tests).
MESSAGING_SEND_WINDOW_SECONDS = env_int("MESSAGING_SEND_WINDOW_SECONDS", default=60, minimum=1)
MESSAGING_RECALL_WINDOW_SECONDS = env_int("MESSAGING_RECALL_WINDOW_SECONDS", default=120, minimum=0)
MESSAGING_GROUP_MAX_MEMBERS = env_int("MESSAGING_GROUP_MAX_MEMBERS", default=500, minimum=2)
MESSAGING_GROUP_NAME_MAX_CHARS = env_int(
    "MESSAGING_GROUP_NAME_MAX_CHARS", default=64, minimum=1, maximum=64
)
MESSAGING_ANNOUNCEMENT_MAX_CHARS = env_int(
    "MESSAGING_ANNOUNCEMENT_MAX_CHARS", default=2000, minimum=1
)
MESSAGING_SYNC_DEFAULT_LIMIT = env_int("MESSAGING_SYNC_DEFAULT_LIMIT", default=200, minimum=1)
MESSAGING_SYNC_MAX_LIMIT = env_int("MESSAGING_SYNC_MAX_LIMIT", default=1000, minimum=1)
MESSAGING_LONGPOLL_MAX_SECONDS = env_int(
    "MESSAGING_LONGPOLL_MAX_SECONDS", default=30, minimum=1, maximum=30
)
MESSAGING_HEARTBEAT_SECONDS = env_int("MESSAGING_HEARTBEAT_SECONDS", default=30, minimum=1)
MESSAGING_MAX_FRAME_BYTES = env_int("MESSAGING_MAX_FRAME_BYTES", default=64 * 1024, minimum=1024)
MESSAGING_IMAGE_MAX_BYTES = env_int("MESSAGING_IMAGE_MAX_BYTES", default=10 * 1024 * 1024)
MESSAGING_IMAGE_MAX_PIXELS = env_int("MESSAGING_IMAGE_MAX_PIXELS", default=50_000_000)
MESSAGING_FILE_MAX_BYTES = env_int("MESSAGING_FILE_MAX_BYTES", default=25 * 1024 * 1024)
MESSAGING_FILE_TYPES = frozenset(
    env_list(
        "MESSAGING_FILE_TYPES",
        default=[
            "application/pdf",
            "application/zip",
            "text/plain",
            "text/csv",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "audio/mpeg",
            "video/mp4",
        ],
    )
)
MESSAGING_SPAM_FILTER = env_str(
    "MESSAGING_SPAM_FILTER", default="messaging.services.spam.keyword_filter"
)
MESSAGING_SPAM_FILTER_BUDGET_MS = env_int("MESSAGING_SPAM_FILTER_BUDGET_MS", default=50, minimum=1)
MESSAGING_SPAM_KEYWORDS = [k.lower() for k in env_list("MESSAGING_SPAM_KEYWORDS", default=[])]
# Clients older than this cannot show groups; the server adapts group events for them.
MESSAGING_GROUP_MIN_CLIENT_VERSION = env_str("MESSAGING_GROUP_MIN_CLIENT_VERSION", default="2.0.0")

# --- Gray release (DESIGN.md §6) ------------------------------------------------------
# Changes reach every process through the shared version stamp (SHARED_STATE_POLL_SECONDS).
GRAYRELEASE_TARGET_LIST_MAX = env_int("GRAYRELEASE_TARGET_LIST_MAX", default=1000, minimum=1)
GRAYRELEASE_RANGES_MAX = env_int("GRAYRELEASE_RANGES_MAX", default=20, minimum=1)
GRAYRELEASE_STAGES_MAX = env_int("GRAYRELEASE_STAGES_MAX", default=10, minimum=1)
# Users whose flag entries one push transaction writes (also the preview's scan batch).
GRAYRELEASE_PUSH_BATCH = env_int("GRAYRELEASE_PUSH_BATCH", default=500, minimum=1)
# A push still pending this long after its change is enqueued again (a lost task).
GRAYRELEASE_PUSH_RESUME_SECONDS = env_int(
    "GRAYRELEASE_PUSH_RESUME_SECONDS", default=300, minimum=10
)
# How often Celery beat widens rollouts whose stage has soaked long enough, and
# tells clients of time windows that opened or closed.
GRAYRELEASE_SCHEDULE_TICK_SECONDS = env_int(
    "GRAYRELEASE_SCHEDULE_TICK_SECONDS", default=60, minimum=1
)
CELERY_BEAT_SCHEDULE["grayrelease-advance-stages"] = {
    "task": "grayrelease.tasks.advance_rollout_stages",
    "schedule": float(GRAYRELEASE_SCHEDULE_TICK_SECONDS),
}
CELERY_BEAT_SCHEDULE["grayrelease-announce-time-windows"] = {
    "task": "grayrelease.tasks.announce_time_windows",
    "schedule": float(GRAYRELEASE_SCHEDULE_TICK_SECONDS),
}
CELERY_BEAT_SCHEDULE["grayrelease-resume-pushes"] = {
    "task": "grayrelease.tasks.resume_flag_pushes",
    "schedule": float(GRAYRELEASE_PUSH_RESUME_SECONDS) / 2,
}

# --- Guarded rollouts (issue 5) ----------------------------------------------------------
# How often Celery beat judges guarded rollouts on monitoring's history, and how many
# features may be guarded at once (each is a label value of grayrelease_requests_total).
GRAYRELEASE_GUARD_TICK_SECONDS = env_int("GRAYRELEASE_GUARD_TICK_SECONDS", default=30, minimum=1)
GRAYRELEASE_GUARDED_MAX = env_int("GRAYRELEASE_GUARDED_MAX", default=50, minimum=1, maximum=1000)
CELERY_BEAT_SCHEDULE["grayrelease-check-guards"] = {
    "task": "grayrelease.tasks.check_rollout_guards",
    "schedule": float(GRAYRELEASE_GUARD_TICK_SECONDS),
}
# A new spam filter (a callable, like MESSAGING_SPAM_FILTER) for the senders the
# guarded feature messaging.spam_filter_candidate selects; empty: none.
MESSAGING_SPAM_FILTER_CANDIDATE = env_str("MESSAGING_SPAM_FILTER_CANDIDATE", default="")
# The spam-scoring service messaging.services.spam.remote_filter asks.
MESSAGING_SPAM_FILTER_URL = env_str("MESSAGING_SPAM_FILTER_URL", default="")

# --- Official accounts platform (publicplatform; DESIGN.md §10) ------------------------
# Pushes to developers' servers: each attempt waits this long; at most this many
# attempts with the same plaintext, then the user gets the failure notice.
PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS = env_float(
    "PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS", default=5.0, minimum=0.1
)
PUBLICPLATFORM_WEBHOOK_MAX_ATTEMPTS = env_int(
    "PUBLICPLATFORM_WEBHOOK_MAX_ATTEMPTS", default=3, minimum=1, maximum=3
)
PUBLICPLATFORM_WEBHOOK_RETRY_DELAY_SECONDS = env_float(
    "PUBLICPLATFORM_WEBHOOK_RETRY_DELAY_SECONDS", default=0.5, minimum=0.0
)
# Pushes in flight to one account's server at once (a Redis semaphore): a slow server
# holds at most this many worker slots; its other pushes wait in the queue.
PUBLICPLATFORM_WEBHOOK_CONCURRENCY_PER_ACCOUNT = env_int(
    "PUBLICPLATFORM_WEBHOOK_CONCURRENCY_PER_ACCOUNT", default=4, minimum=1
)
PUBLICPLATFORM_WEBHOOK_SLOT_WAIT_SECONDS = env_float(
    "PUBLICPLATFORM_WEBHOOK_SLOT_WAIT_SECONDS", default=0.5, minimum=0.01
)
# Embedded mode only (Celery eager): pushes run on this many threads of the server
# process instead of in the user's request (publicplatform.embedded).
PUBLICPLATFORM_EMBEDDED_WEBHOOK_THREADS = env_int(
    "PUBLICPLATFORM_EMBEDDED_WEBHOOK_THREADS", default=8, minimum=1
)
PUBLICPLATFORM_WEBHOOK_MAX_RESPONSE_BYTES = env_int(
    "PUBLICPLATFORM_WEBHOOK_MAX_RESPONSE_BYTES", default=64 * 1024, minimum=1024
)
# Server URLs on loopback or private networks (development, tests); off in production.
PUBLICPLATFORM_ALLOW_PRIVATE_SERVER_URLS = env_bool(
    "PUBLICPLATFORM_ALLOW_PRIVATE_SERVER_URLS", default=EMBEDDED
)
PUBLICPLATFORM_NEWS_MAX_ARTICLES = env_int(
    "PUBLICPLATFORM_NEWS_MAX_ARTICLES", default=10, minimum=1, maximum=10
)
# The developer REST API at /cgi-bin/ (reference §4).
PUBLICPLATFORM_ACCESS_TOKEN_TTL_SECONDS = env_int(
    "PUBLICPLATFORM_ACCESS_TOKEN_TTL_SECONDS", default=7200, minimum=1
)
PUBLICPLATFORM_TOKEN_REQUESTS_PER_DAY = env_int(
    "PUBLICPLATFORM_TOKEN_REQUESTS_PER_DAY", default=2000, minimum=1
)
PUBLICPLATFORM_API_MAX_BODY_BYTES = env_int(
    "PUBLICPLATFORM_API_MAX_BODY_BYTES", default=1024 * 1024, minimum=1024
)
PUBLICPLATFORM_CUSTOM_WINDOW_SECONDS = env_int(
    "PUBLICPLATFORM_CUSTOM_WINDOW_SECONDS", default=48 * 3600, minimum=1
)
PUBLICPLATFORM_CUSTOM_MESSAGES_PER_INTERACTION = env_int(
    "PUBLICPLATFORM_CUSTOM_MESSAGES_PER_INTERACTION", default=20, minimum=1
)
PUBLICPLATFORM_MASS_SENDS_PER_DAY = env_int(
    "PUBLICPLATFORM_MASS_SENDS_PER_DAY", default=100, minimum=1
)
PUBLICPLATFORM_MASS_SEND_BATCH = env_int("PUBLICPLATFORM_MASS_SEND_BATCH", default=500, minimum=1)
PUBLICPLATFORM_MASS_SEND_MAX_OPENIDS = env_int(
    "PUBLICPLATFORM_MASS_SEND_MAX_OPENIDS", default=10000, minimum=1
)
PUBLICPLATFORM_USER_GET_PAGE = env_int(
    "PUBLICPLATFORM_USER_GET_PAGE", default=10000, minimum=1, maximum=10000
)
PUBLICPLATFORM_BATCHGET_MAX = env_int(
    "PUBLICPLATFORM_BATCHGET_MAX", default=100, minimum=1, maximum=100
)
# Users: searches a minute; developers: accounts each; keyword rules per account.
PUBLICPLATFORM_SEARCHES_PER_MINUTE = env_int(
    "PUBLICPLATFORM_SEARCHES_PER_MINUTE", default=30, minimum=1
)
PUBLICPLATFORM_ACCOUNTS_PER_DEVELOPER = env_int(
    "PUBLICPLATFORM_ACCOUNTS_PER_DEVELOPER", default=10, minimum=1
)
PUBLICPLATFORM_AUTOREPLY_MAX_RULES = env_int(
    "PUBLICPLATFORM_AUTOREPLY_MAX_RULES", default=100, minimum=1
)
CELERY_BEAT_SCHEDULE["requeue-stale-webhook-deliveries"] = {
    "task": "publicplatform.tasks.requeue_stale_deliveries",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["purge-expired-access-tokens"] = {
    "task": "publicplatform.tasks.purge_expired_tokens",
    "schedule": crontab(minute=41, hour="*/6"),
}
# The developer REST API reads its own (larger) bodies; the shared middleware skips it.
REQUEST_BODY_LIMIT_SELF_CHECKED_PREFIXES = ("/cgi-bin/",)
LOGIN_URL = "/platform/login/"

# --- HTTP API ---------------------------------------------------------------------
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", default=64 * 1024, minimum=1024)
API_PAGE_SIZE = env_int("API_PAGE_SIZE", default=50, minimum=1)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", default=200, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = AVATAR_MAX_BYTES
# Multipart bodies may carry one upload plus its form fields.
UPLOAD_MAX_BYTES = (
    max(AVATAR_MAX_BYTES, MESSAGING_IMAGE_MAX_BYTES, MESSAGING_FILE_MAX_BYTES) + 64 * 1024
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api.authentication.TicketAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.authentication.HasTicket"],
    "DEFAULT_PARSER_CLASSES": ["wechat_core.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "wechat_core.api.pagination.PageNumberPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "wechat_core.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WeChat-style messaging API",
    "DESCRIPTION": (
        "Accounts, tickets, contacts and the rest of the service. Authenticate with "
        "`Authorization: Ticket <ticket>` using the ticket returned by login."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "wechat_core.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PlatformEnum": "accounts.models.Platform",
        "FriendRequestStatusEnum": "accounts.models.FriendRequestStatus",
    },
}

# --- Security (`manage.py check --deploy` passes with the production values) -------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Logging: tickets and secrets are scrubbed from every record ----------------------
LOG_LEVEL = env_str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "wechat_core.logging.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Monitoring (DESIGN.md §7; monitoring/README.md) ------------------------------------
# Collection by the framework hooks (HTTP, websockets, Celery, outbound HTTP) and the
# business metrics; off only to measure the instrumentation's own cost.
MONITORING_ENABLED = env_bool("MONITORING_ENABLED", default=True)
# prometheus-client's multiprocess directory: every process on a host writes its
# metrics there and /metrics sums them. Wipe it before starting the processes.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# Scrapers send `Authorization: Bearer <token>`; staff sessions may read /metrics too.
MONITORING_METRICS_TOKEN = env_str("MONITORING_METRICS_TOKEN", default="")
# Each server process writes its metrics into the database this often; also the
# resolution of the fine history. Must divide 60.
MONITORING_FLUSH_SECONDS = env_int("MONITORING_FLUSH_SECONDS", default=5, minimum=1, maximum=60)
if 60 % MONITORING_FLUSH_SECONDS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("MONITORING_FLUSH_SECONDS must divide 60.")
MONITORING_HISTORY_ENABLED = env_bool("MONITORING_HISTORY_ENABLED", default=True)
MONITORING_FINE_RETENTION_SECONDS = env_int(
    "MONITORING_FINE_RETENTION_SECONDS", default=3600, minimum=60
)
# Minute points; at least 8 days so that rules can compare with last week.
MONITORING_RETENTION_DAYS = env_int("MONITORING_RETENTION_DAYS", default=35, minimum=8)
MONITORING_ALERT_HISTORY_DAYS = env_int("MONITORING_ALERT_HISTORY_DAYS", default=180, minimum=1)
# Distinct values one label may take in one process; later ones are counted as "other".
MONITORING_LABEL_VALUES_MAX = env_int("MONITORING_LABEL_VALUES_MAX", default=32, minimum=2)
# Routes that wait by design (long-poll): counted, but kept out of the latency histogram.
MONITORING_LONG_POLL_ROUTES = frozenset(
    env_list("MONITORING_LONG_POLL_ROUTES", default=["api/messaging/sync"])
)
MONITORING_EVALUATE_SECONDS = env_int("MONITORING_EVALUATE_SECONDS", default=60, minimum=1)
MONITORING_DASHBOARD_REFRESH_SECONDS = env_int(
    "MONITORING_DASHBOARD_REFRESH_SECONDS", default=5, minimum=1
)
MONITORING_WEBHOOK_TIMEOUT_SECONDS = env_float(
    "MONITORING_WEBHOOK_TIMEOUT_SECONDS", default=5.0, minimum=0.1
)
# Where operators reach the dashboards (links in notifications), e.g. https://ops.example.com
MONITORING_EXTERNAL_URL = env_str("MONITORING_EXTERNAL_URL", default="")
MONITORING_NOTIFY_MAX_ATTEMPTS = env_int("MONITORING_NOTIFY_MAX_ATTEMPTS", default=5, minimum=1)
# The system account that writes alerts to operators' chats (a reserved WeChat ID).
MONITORING_SYSTEM_WECHAT_ID = env_str("MONITORING_SYSTEM_WECHAT_ID", default="monitoring")
if MONITORING_SYSTEM_WECHAT_ID.lower() not in WECHAT_ID_RESERVED:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("MONITORING_SYSTEM_WECHAT_ID must be listed in WECHAT_ID_RESERVED.")
# System accounts may write to anyone's chat without being their friend (messaging).
MESSAGING_SYSTEM_ACCOUNTS = frozenset({MONITORING_SYSTEM_WECHAT_ID.lower()})
# Delivery receipts: how old a message may be to count (older: catch-up, not delay),
# and how many one receipt may carry.
MONITORING_RECEIPT_MAX_AGE_SECONDS = env_int(
    "MONITORING_RECEIPT_MAX_AGE_SECONDS", default=600, minimum=1
)
MONITORING_RECEIPT_MAX_MESSAGES = env_int("MONITORING_RECEIPT_MAX_MESSAGES", default=100, minimum=1)
# Traffic guard (seed 001 §11): a client repeating one request without progress more
# than this many times a minute is told to stop connecting for GUARD_BLOCK_SECONDS.
MONITORING_GUARD_ENABLED = env_bool("MONITORING_GUARD_ENABLED", default=True)
MONITORING_GUARD_REPEATS_PER_MINUTE = env_int(
    "MONITORING_GUARD_REPEATS_PER_MINUTE", default=60, minimum=2
)
MONITORING_GUARD_BLOCK_SECONDS = env_int("MONITORING_GUARD_BLOCK_SECONDS", default=120, minimum=1)
MONITORING_GUARD_TRACKED_CLIENTS = env_int(
    "MONITORING_GUARD_TRACKED_CLIENTS", default=20_000, minimum=100
)
# Paths (without the leading /) probed on purpose by machines that ask the same
# thing every few seconds from one address (load-balancer health checks,
# Prometheus): never counted nor refused by the guard.
MONITORING_GUARD_EXEMPT_ROUTES = frozenset(
    env_list("MONITORING_GUARD_EXEMPT_ROUTES", default=["api/health", "metrics"])
)
CELERY_BEAT_SCHEDULE["monitoring-evaluate-alerts"] = {
    "task": "monitoring.tasks.evaluate_alerts",
    "schedule": float(MONITORING_EVALUATE_SECONDS),
}
CELERY_BEAT_SCHEDULE["monitoring-sample-queues"] = {
    "task": "monitoring.tasks.sample_queues",
    "schedule": float(MONITORING_FLUSH_SECONDS),
}
CELERY_BEAT_SCHEDULE["monitoring-purge-history"] = {
    "task": "monitoring.tasks.purge_history",
    "schedule": crontab(minute="*/10"),
}

# --- E-mail (alert notifications) ---------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", default="")
EMAIL_PORT = env_int("EMAIL_PORT", default=25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = 10
# Without an SMTP host (the embedded mode), mail is written to the console.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="monitoring@localhost")
