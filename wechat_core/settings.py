"""The one settings module. Every value comes from the environment (see README's table).

Defaults describe the embedded mode of `make run`: SQLite, an in-memory channel
layer, Celery tasks run in-process, a local-memory cache. Setting REDIS_URL and
DATABASE_URL switches to the production layout; nothing else needs to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import csp.constants as csp
import django_stubs_ext
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue
from redis.backoff import NoBackoff
from redis.retry import Retry

from wechat_core.env import (
    env_bool,
    env_choice,
    env_db,
    env_float,
    env_int,
    env_list,
    env_networks,
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
    "csp",
    "wechat_core",
    "accounts",
    "messaging",
    "publicplatform",
    "grayrelease",
    "monitoring",
    "wallet",
    "redpackets",
    "drills",
    "shake",
    # Project level, above every app: the embedded mode's demo data (createdemo).
    "demo",
]

MIDDLEWARE = [
    # Measures each request's queuing time for admission control (docs/overload.md).
    "wechat_core.admission.http.AdmissionMiddleware",
    # Outermost, so it times and counts everything below it, static files included.
    "monitoring.instrument.http.MonitoringMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of users' messages: Accept-Language (en or zh-hans), else English.
    "django.middleware.locale.LocaleMiddleware",
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

# Benchmarks only: every HTTP request's stage timings appended to this file as JSON
# lines (wechat_core/reqtiming.py: slot, thread, database pool and queries, Celery
# publish). Empty (the default): off, and nothing of it is in the request path.
REQUEST_TIMING_FILE = env_str("REQUEST_TIMING_FILE", default="")
if REQUEST_TIMING_FILE:
    MIDDLEWARE.insert(1, "wechat_core.reqtiming.TimingMiddleware")

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
# The languages of user-visible messages (errors, pages): English and Simplified
# Chinese, chosen per request by Accept-Language. The catalogs are compiled (.mo)
# and committed under locale/, so no gettext is needed to install or run.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
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
    # connections pile up; psycopg's pool bounds them instead. Each connection is
    # tried (an empty query) as it leaves the pool, and one found dead has every
    # idle one checked and replaced: after a failover or a restart all of them
    # are dead, and each would fail a request (wechat_core/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "wechat_core.postgresql"
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
# SECRET_KEY signs sessions and seals verified tickets: outside the embedded mode
# (a demo on one machine) it must be a real key, by Django's own measure
# (`check --deploy`): 50 characters or more, at least 5 different ones.
if not EMBEDDED and (
    len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for the production layout (REDIS_URL is set): use at "
        f"least 50 random characters (got {len(SECRET_KEY)}). Generate one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", default="wechat")

# Immediate retries of a Redis command that failed to connect or timed out
# (wechat_core.cacheclient): one replaces a pooled connection that a Redis restart
# closed; every caller goes on without Redis, so more would only hold requests.
REDIS_COMMAND_RETRIES = env_int("REDIS_COMMAND_RETRIES", default=1, minimum=0)
# How long a process leaves a Redis that failed BREAKER_FAILURES times in a row
# alone before probing it (wechat_core.cacheclient.ShieldedConnection).
REDIS_BREAKER_RESET_SECONDS = env_float("REDIS_BREAKER_RESET_SECONDS", default=2.0, minimum=0.1)
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
            "OPTIONS": {
                "socket_connect_timeout": 1,
                "socket_timeout": 1,
                "retry": Retry(NoBackoff(), REDIS_COMMAND_RETRIES),
                "pool_class": "wechat_core.cacheclient.ShieldedConnectionPool",
            },
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

# Notifies of the sends that run on the event loop (group commit) are published from
# that loop, pipelined (wechat_core.realtime.publish_from_loop); false hands them
# to the publisher thread like every other publish.
REALTIME_PUBLISH_FROM_LOOP = env_bool("REALTIME_PUBLISH_FROM_LOOP", default=True)

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
# Every task stops after this long (seconds): the soft limit raises
# SoftTimeLimitExceeded inside it, the hard one kills the pool process running it
# and the worker starts another; the message is acknowledged, not run again. A
# runaway task (issue 11: a keyword pattern that took minutes) holds one process
# for this long at most. Celery enforces both only in the prefork pool (the
# Procfile's `worker`); the `webhook` worker's threads hold just webhook pushes,
# which the transport's own deadline bounds (docs/official-accounts.md).
CELERY_TASK_SOFT_TIME_LIMIT = env_float("CELERY_TASK_SOFT_TIME_LIMIT", default=100.0, minimum=1.0)
CELERY_TASK_TIME_LIMIT = env_float("CELERY_TASK_TIME_LIMIT", default=120.0, minimum=1.0)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT.")
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
    # `webhook` holds only the pushes to developers' servers, which wait on the
    # network: its own worker runs them on threads (Procfile), so a slow server
    # never holds a process that other work needs. The platform's other tasks
    # (keyword replies, greetings, mass sends) compute, on the prefork worker.
    "publicplatform.tasks.deliver_webhook": {"queue": "webhook"},
    "publicplatform.tasks.*": {"queue": "default"},
    "monitoring.tasks.*": {"queue": "monitoring"},
}
# Without Celery beat (the embedded mode) a thread of the ASGI process runs
# CELERY_BEAT_SCHEDULE (wechat_core.embedded.beat). One process only.
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
# Data centres (issue 17, docs/deploy.md): every data centre of the deployment, this
# one included, as `name:index=http-endpoint,…;name:index=…` (e.g.
# `sh:0=https://sh.example;hk:1=https://hk.example`). Empty (the default, and the
# embedded mode): one data centre, nothing of the rest switched on. `index` picks the
# block of row ids this data centre allocates (index * 10**12: an id tells its origin),
# the endpoints are the public HTTP base URLs clients are sent to ("home is elsewhere").
DATACENTERS: dict[str, dict[str, Any]] = {}
for _spec in filter(None, (part.strip() for part in env_str("DATACENTERS", default="").split(";"))):
    _head, _, _urls = _spec.partition("=")
    _name, _, _index = _head.partition(":")
    if not _name or not _index.isdigit():
        raise ImproperlyConfigured(f"DATACENTERS: {_spec!r} is not name:index=url,url.")
    DATACENTERS[_name.strip()] = {
        "index": int(_index),
        "endpoints": [url.strip().rstrip("/") for url in _urls.split(",") if url.strip()],
    }
MULTI_DATACENTER = bool(DATACENTERS)
if MULTI_DATACENTER and DATACENTER not in DATACENTERS:
    raise ImproperlyConfigured(f"DATACENTERS does not list this data centre, {DATACENTER!r}.")
if len({dc["index"] for dc in DATACENTERS.values()}) != len(DATACENTERS):
    raise ImproperlyConfigured("DATACENTERS: every data centre needs its own index.")
# The replication queues' broker (RabbitMQ; quorum queues), needed with DATACENTERS.
REPLICATION_BROKER_URL = env_str("REPLICATION_BROKER_URL", default="")
if MULTI_DATACENTER and not REPLICATION_BROKER_URL:
    raise ImproperlyConfigured("DATACENTERS needs REPLICATION_BROKER_URL (amqp://…).")
# Queues are named <prefix>.<origin>.<destination>. The relay ships at most
# REPLICATION_RELAY_BATCH outbox entries per round, and looks for new ones every
# REPLICATION_POLL_SECONDS when the outbox is empty.
REPLICATION_QUEUE_PREFIX = env_str("REPLICATION_QUEUE_PREFIX", default="replication")
REPLICATION_RELAY_BATCH = env_int("REPLICATION_RELAY_BATCH", default=500, minimum=1)
REPLICATION_POLL_SECONDS = env_float("REPLICATION_POLL_SECONDS", default=0.05, minimum=0.001)
# How long the relay waits for the broker to confirm a publish (or to answer
# anything else) before it drops the connection, reconnects and publishes the
# batch again: a broker, or a link to it, that goes silent must not hang it.
REPLICATION_CONFIRM_TIMEOUT_SECONDS = env_float(
    "REPLICATION_CONFIRM_TIMEOUT_SECONDS", default=10.0, minimum=0.1
)
# Messages (each a relay batch) a replay worker takes from a queue before
# acknowledging (RabbitMQ prefetch). What has arrived is applied in one transaction
# of at most REPLICATION_REPLAY_BATCH entries; an entry that fails on its own
# REPLICATION_REPLAY_ATTEMPTS times is parked (kept for operators, passed over).
REPLICATION_PREFETCH = env_int("REPLICATION_PREFETCH", default=200, minimum=1)
REPLICATION_REPLAY_BATCH = env_int("REPLICATION_REPLAY_BATCH", default=500, minimum=1)
REPLICATION_REPLAY_ATTEMPTS = env_int("REPLICATION_REPLAY_ATTEMPTS", default=3, minimum=1)
# The WeChat ID allocation authority (DESIGN.md §9): empty means this data centre's
# database is the authority (one data centre, or the authority's own); otherwise the
# authority's base URL. Calls between data centres carry DATACENTER_SECRET.
WECHAT_ID_AUTHORITY_URL = env_str("WECHAT_ID_AUTHORITY_URL", default="").rstrip("/")
WECHAT_ID_AUTHORITY_TIMEOUT_SECONDS = env_float(
    "WECHAT_ID_AUTHORITY_TIMEOUT_SECONDS", default=3.0, minimum=0.1
)
DATACENTER_SECRET = env_str("DATACENTER_SECRET", default="")
# How stale a process's copy of shared switches (campus blocks, ticket
# revocations) may get: each process re-reads a version stamp this often.
SHARED_STATE_POLL_SECONDS = env_float("SHARED_STATE_POLL_SECONDS", default=0.2, minimum=0.01)
# Blocking a campus (wechat_core/campuses.py): each ASGI process checks its campus this
# often (0: never; its links are then not moved), and tells moved clients to spread
# their reconnects over this many seconds.
CAMPUS_WATCH_SECONDS = env_float("CAMPUS_WATCH_SECONDS", default=0.5, minimum=0.0)
CAMPUS_MOVE_SPREAD_SECONDS = env_float("CAMPUS_MOVE_SPREAD_SECONDS", default=1.0, minimum=0.0)

# --- Serving ------------------------------------------------------------------
# uvicorn measured faster for websockets and HTTP here (docs/performance.md).
ASGI_SERVER = env_choice("ASGI_SERVER", default="uvicorn", choices=("daphne", "uvicorn", "granian"))
HOST = env_str("HOST", default="127.0.0.1")
PORT = env_int("PORT", default=8000, minimum=1)
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", default=1, minimum=1)
# Everything an ASGI process built while starting (Django, the apps, their
# registries: ~140,000 objects) is moved out of the garbage collector's reach
# (gc.freeze): otherwise every full collection walks it again, 110-250 ms with
# every thread of the process stopped, a few times a minute under load; those
# pauses were the overload benchmark's p99 (docs/performance.md, overload run 8).
ASGI_GC_FREEZE = env_bool("ASGI_GC_FREEZE", default=True)
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
# One line per request from the ASGI server, through the log redaction. A proxy in
# front usually logs requests already, so only the embedded mode has it by default.
ACCESS_LOG = env_bool("ACCESS_LOG", default=EMBEDDED)

# --- Accounts, tickets, login protection -----------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.AccountBackend"]
PASSWORD_HASHERS = [
    "accounts.hashers.ConfiguredArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# argon2id's cost per login and registration. The defaults are OWASP's first
# recommended configuration (19 MiB, 2 passes, 1 lane: ~35 ms of a core) instead of
# Django's (100 MiB, 2 passes, 8 lanes: ~300 ms), so that logins, served first under
# overload, stay cheap enough to serve (docs/security.md, docs/overload.md).
# Stored hashes of other costs are rehashed at the next login.
PASSWORD_ARGON2_TIME_COST = env_int("PASSWORD_ARGON2_TIME_COST", default=2, minimum=1)
PASSWORD_ARGON2_PARALLELISM = env_int("PASSWORD_ARGON2_PARALLELISM", default=1, minimum=1)
PASSWORD_ARGON2_MEMORY_KIB = env_int(
    "PASSWORD_ARGON2_MEMORY_KIB", default=19456, minimum=8 * PASSWORD_ARGON2_PARALLELISM
)
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
BLOCKS_PER_DAY = env_int("BLOCKS_PER_DAY", default=100, minimum=1)

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
# At most one "typing" notice per user and chat is relayed in this many seconds.
MESSAGING_TYPING_INTERVAL_SECONDS = env_int(
    "MESSAGING_TYPING_INTERVAL_SECONDS", default=3, minimum=1
)
MESSAGING_GROUP_MAX_MEMBERS = env_int("MESSAGING_GROUP_MAX_MEMBERS", default=500, minimum=2)
MESSAGING_GROUP_NAME_MAX_CHARS = env_int(
    "MESSAGING_GROUP_NAME_MAX_CHARS", default=64, minimum=1, maximum=64
)
MESSAGING_ANNOUNCEMENT_MAX_CHARS = env_int(
    "MESSAGING_ANNOUNCEMENT_MAX_CHARS", default=2000, minimum=1
)
# Full-history search (messaging.selectors.message_search): query length, searches per
# user a minute, results per page, characters of text shown around a hit.
MESSAGING_SEARCH_QUERY_MAX_CHARS = env_int(
    "MESSAGING_SEARCH_QUERY_MAX_CHARS", default=64, minimum=1, maximum=256
)
MESSAGING_SEARCHES_PER_MINUTE = env_int("MESSAGING_SEARCHES_PER_MINUTE", default=60, minimum=1)
MESSAGING_SEARCH_MAX_RESULTS = env_int("MESSAGING_SEARCH_MAX_RESULTS", default=50, minimum=1)
MESSAGING_SEARCH_SNIPPET_CHARS = env_int("MESSAGING_SEARCH_SNIPPET_CHARS", default=30, minimum=0)
MESSAGING_SYNC_DEFAULT_LIMIT = env_int("MESSAGING_SYNC_DEFAULT_LIMIT", default=200, minimum=1)
MESSAGING_SYNC_MAX_LIMIT = env_int("MESSAGING_SYNC_MAX_LIMIT", default=1000, minimum=1)
MESSAGING_LONGPOLL_MAX_SECONDS = env_int(
    "MESSAGING_LONGPOLL_MAX_SECONDS", default=30, minimum=1, maximum=30
)
MESSAGING_HEARTBEAT_SECONDS = env_int("MESSAGING_HEARTBEAT_SECONDS", default=30, minimum=1)
# Threads per ASGI process for the serialised steps of websocket frames (a hot red
# packet's winners: one at a time per packet), apart from the threads that answer
# everything else, so those never wait behind a row lock.
MESSAGING_SERIAL_THREADS = env_int("MESSAGING_SERIAL_THREADS", default=4, minimum=1)
# The websocket's plain text sends on PostgreSQL run on the event loop and are
# written in group commits: the sends that arrive while the previous commit is in
# flight (or within the window) share one transaction (messaging/store/groupcommit.py).
MESSAGING_GROUP_COMMIT = env_bool("MESSAGING_GROUP_COMMIT", default=True)
MESSAGING_GROUP_COMMIT_WINDOW_MS = env_float(
    "MESSAGING_GROUP_COMMIT_WINDOW_MS", default=0.0, minimum=0.0
)
MESSAGING_GROUP_COMMIT_MAX_SENDS = env_int(
    "MESSAGING_GROUP_COMMIT_MAX_SENDS", default=64, minimum=1
)
# The websocket's `sync` (and the long-poll) on PostgreSQL reads its page on the
# event loop, on up to MESSAGING_SYNC_LOOP_CONNECTIONS asynchronous connections per
# process (messaging/store/loopread.py); false reads every page in a worker thread.
MESSAGING_SYNC_ON_LOOP = env_bool("MESSAGING_SYNC_ON_LOOP", default=True)
MESSAGING_SYNC_LOOP_CONNECTIONS = env_int(
    "MESSAGING_SYNC_LOOP_CONNECTIONS", default=4, minimum=1, maximum=64
)
MESSAGING_MAX_FRAME_BYTES = env_int("MESSAGING_MAX_FRAME_BYTES", default=64 * 1024, minimum=1024)
# The ASGI server cuts a websocket message larger than this at the socket (close
# 1009) instead of buffering it whole. Four times the frame limit: a frame the
# protocol accepts (its characters counted) is never cut, whatever its UTF-8
# length, and one a little over the limit still gets the frame_too_large error.
WEBSOCKET_MAX_MESSAGE_BYTES = 4 * MESSAGING_MAX_FRAME_BYTES
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
# The developer console's calls to an account's server ("test my webhook", the
# verification on save) in flight at once; more are refused (console_busy).
PUBLICPLATFORM_CONSOLE_CALLS_PER_ACCOUNT = env_int(
    "PUBLICPLATFORM_CONSOLE_CALLS_PER_ACCOUNT", default=2, minimum=1
)
# Embedded mode only (Celery eager): pushes run on this many threads of the server
# process instead of in the user's request (wechat_core.embedded).
PUBLICPLATFORM_EMBEDDED_WEBHOOK_THREADS = env_int(
    "PUBLICPLATFORM_EMBEDDED_WEBHOOK_THREADS", default=8, minimum=1
)
PUBLICPLATFORM_WEBHOOK_MAX_RESPONSE_BYTES = env_int(
    "PUBLICPLATFORM_WEBHOOK_MAX_RESPONSE_BYTES", default=64 * 1024, minimum=1024
)
# Private networks (CIDR) that developers' servers may be in besides the public
# internet: none by default, embedded mode included; e.g. 127.0.0.1/32 for a
# developer's test server on this machine.
PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS = env_networks(
    "PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS", default=[]
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

# --- Wallet and payments (wallet; docs/wallet.md) ----------------------------------------
# The payment provider (WeChat Pay v2 style; `python -m paysandbox` locally). The key
# signs every message both ways: from the environment only, never logged. Empty: the
# wallet shows balances and moves money inside the ledger, but top-ups and
# withdrawals answer payments_unavailable.
PAY_PROVIDER_URL = env_str("PAY_PROVIDER_URL", default="http://127.0.0.1:8090").rstrip("/")
PAY_APPID = env_str("PAY_APPID", default="wxd930ea5d5a258f4f")
PAY_MCH_ID = env_str("PAY_MCH_ID", default="10000100")
PAY_MCH_KEY = env_str("PAY_MCH_KEY", default="")
if PAY_MCH_KEY and len(PAY_MCH_KEY) < 16:
    raise ImproperlyConfigured("PAY_MCH_KEY must have at least 16 characters (WeChat's has 32).")
# Where the provider posts payment notifications: our /api/wallet/pay/notify, as the
# provider reaches it.
PAY_NOTIFY_URL = env_str("PAY_NOTIFY_URL", default=f"http://{HOST}:{PORT}/api/wallet/pay/notify")
PAY_TIMEOUT_SECONDS = env_float("PAY_TIMEOUT_SECONDS", default=5.0, minimum=0.1)
# Limits in fen (1 CNY = 100 fen); "per day" is any 24 hours.
WALLET_TOPUP_MIN_FEN = env_int("WALLET_TOPUP_MIN_FEN", default=1, minimum=1)
WALLET_TOPUP_MAX_FEN = env_int("WALLET_TOPUP_MAX_FEN", default=500_000, minimum=1)
WALLET_TOPUP_MAX_FEN_PER_DAY = env_int("WALLET_TOPUP_MAX_FEN_PER_DAY", default=2_000_000, minimum=1)
WALLET_WITHDRAWAL_MIN_FEN = env_int("WALLET_WITHDRAWAL_MIN_FEN", default=30, minimum=1)
WALLET_WITHDRAWAL_MAX_FEN = env_int("WALLET_WITHDRAWAL_MAX_FEN", default=2_000_000, minimum=1)
WALLET_WITHDRAWAL_MAX_FEN_PER_DAY = env_int(
    "WALLET_WITHDRAWAL_MAX_FEN_PER_DAY", default=5_000_000, minimum=1
)
# Orders whose outcome we have not heard of this long are asked about (a lost notify,
# a lost withdrawal answer), by a Celery beat task that runs every ORDER_CHECK_SECONDS.
WALLET_ORDER_CHECK_AFTER_SECONDS = env_int(
    "WALLET_ORDER_CHECK_AFTER_SECONDS", default=60, minimum=0
)
WALLET_ORDER_CHECK_SECONDS = env_int("WALLET_ORDER_CHECK_SECONDS", default=30, minimum=1)
WALLET_ORDER_CHECK_BATCH = env_int("WALLET_ORDER_CHECK_BATCH", default=100, minimum=1)
# An unpaid top-up is closed at the provider after this long (WeChat's prepay_id: 2 hours).
WALLET_TOPUP_EXPIRE_SECONDS = env_int("WALLET_TOPUP_EXPIRE_SECONDS", default=7200, minimum=60)
# Reconciliation reads this many accounts or transactions per query (constant memory),
# and lists at most REPORT_MAX problems of each sort.
WALLET_RECONCILE_CHUNK = env_int("WALLET_RECONCILE_CHUNK", default=10_000, minimum=1)
WALLET_RECONCILE_REPORT_MAX = env_int("WALLET_RECONCILE_REPORT_MAX", default=100, minimum=1)
CELERY_TASK_ROUTES["wallet.tasks.*"] = {"queue": "payout_slow"}
CELERY_BEAT_SCHEDULE["wallet-check-pending-orders"] = {
    "task": "wallet.tasks.check_pending_orders",
    "schedule": float(WALLET_ORDER_CHECK_SECONDS),
}

# --- Red packets (redpackets; docs/redpackets.md) -----------------------------------------
# WeChat's limits: at most 200 CNY a packet, 100 shares (and no more than the group's
# members; one in a 1:1 chat), at least 0.01 CNY a share; unopened shares go back after 24 h.
REDPACKETS_MAX_TOTAL_FEN = env_int("REDPACKETS_MAX_TOTAL_FEN", default=20_000, minimum=1)
REDPACKETS_MAX_SHARES = env_int("REDPACKETS_MAX_SHARES", default=100, minimum=1)
REDPACKETS_MIN_SHARE_FEN = env_int("REDPACKETS_MIN_SHARE_FEN", default=1, minimum=1)
REDPACKETS_GREETING_MAX_CHARS = env_int(
    "REDPACKETS_GREETING_MAX_CHARS", default=25, minimum=1, maximum=100
)
REDPACKETS_EXPIRE_SECONDS = env_int("REDPACKETS_EXPIRE_SECONDS", default=86_400, minimum=1)
# The gray-release feature that releases red packets and doubles as their kill switch
# (sending refused with redpackets_disabled; grabbing and refunds go on). While no such
# feature exists, REDPACKETS_ENABLED_WITHOUT_FEATURE decides.
REDPACKETS_FEATURE = env_str("REDPACKETS_FEATURE", default="redpackets")
REDPACKETS_ENABLED_WITHOUT_FEATURE = env_bool("REDPACKETS_ENABLED_WITHOUT_FEATURE", default=True)
# Devices older than this get a packet as the text "[Red packet] <greeting> — open it
# in the latest version" (messaging.compat).
REDPACKETS_MIN_CLIENT_VERSION = env_str("REDPACKETS_MIN_CLIENT_VERSION", default="3.0.0")
# Covers a sender may choose besides "default" and "surname" (id → title).
REDPACKETS_COVERS: object = {
    "spring": "Spring Festival",
    "fortune": "Good fortune",
    "lantern": "Lantern Festival",
}
# The grab gate's Redis keys outlive the packet's expiry by this long.
REDPACKETS_GATE_LINGER_SECONDS = env_int("REDPACKETS_GATE_LINGER_SECONDS", default=3600, minimum=1)
# Grabs still "arriving" after this long are enqueued again (a lost task, a worker that
# was down), by a beat task every CREDIT_SWEEP_SECONDS; expired packets are refunded by
# one every REFUND_SWEEP_SECONDS; each run handles at most SWEEP_BATCH of them.
REDPACKETS_CREDIT_SWEEP_AFTER_SECONDS = env_int(
    "REDPACKETS_CREDIT_SWEEP_AFTER_SECONDS", default=30, minimum=0
)
REDPACKETS_CREDIT_SWEEP_SECONDS = env_int("REDPACKETS_CREDIT_SWEEP_SECONDS", default=15, minimum=1)
REDPACKETS_REFUND_SWEEP_SECONDS = env_int("REDPACKETS_REFUND_SWEEP_SECONDS", default=60, minimum=1)
REDPACKETS_SWEEP_BATCH = env_int("REDPACKETS_SWEEP_BATCH", default=500, minimum=1)
# The daily reconciliation (and manage.py reconcile_redpackets): at this UTC hour, packets
# read CHUNK at a time, at most REPORT_MAX problems listed in a report.
REDPACKETS_RECONCILE_HOUR = env_int("REDPACKETS_RECONCILE_HOUR", default=3, minimum=0, maximum=23)
REDPACKETS_RECONCILE_CHUNK = env_int("REDPACKETS_RECONCILE_CHUNK", default=200, minimum=1)
REDPACKETS_RECONCILE_REPORT_MAX = env_int("REDPACKETS_RECONCILE_REPORT_MAX", default=100, minimum=1)
CELERY_TASK_ROUTES["redpackets.tasks.reconcile"] = {"queue": "payout_slow"}
CELERY_TASK_ROUTES["redpackets.tasks.*"] = {"queue": "payout_fast"}
CELERY_BEAT_SCHEDULE["redpackets-sweep-arriving-credits"] = {
    "task": "redpackets.tasks.sweep_arriving_credits",
    "schedule": float(REDPACKETS_CREDIT_SWEEP_SECONDS),
}
CELERY_BEAT_SCHEDULE["redpackets-refund-expired"] = {
    "task": "redpackets.tasks.refund_expired",
    "schedule": float(REDPACKETS_REFUND_SWEEP_SECONDS),
}
CELERY_BEAT_SCHEDULE["redpackets-reconcile"] = {
    "task": "redpackets.tasks.reconcile",
    "schedule": crontab(minute=30, hour=REDPACKETS_RECONCILE_HOUR),
}

# --- Shake activities (shake; docs/shake.md) ----------------------------------------------
# The HMAC key of prizes and of the signed records clients carry; empty: derived from
# SECRET_KEY (a key of its own lets it rotate apart).
SHAKE_SIGNING_KEY = env_str("SHAKE_SIGNING_KEY", default="")
# Each access process reserves prizes this many at a time, before handing any out (a
# crash loses at most this many until they are recycled), and tops up below LOW_WATER.
SHAKE_RESERVE_BATCH = env_int("SHAKE_RESERVE_BATCH", default=200, minimum=1)
SHAKE_RESERVE_LOW_WATER = env_int("SHAKE_RESERVE_LOW_WATER", default=50, minimum=0)
# The access process registry: a heartbeat every HEARTBEAT_SECONDS, dead after TTL.
SHAKE_HEARTBEAT_SECONDS = env_float("SHAKE_HEARTBEAT_SECONDS", default=0.5, minimum=0.05)
SHAKE_PROCESS_TTL_SECONDS = env_float("SHAKE_PROCESS_TTL_SECONDS", default=2.0, minimum=0.1)
# The issue-rate bucket is refilled every 100 ms and holds at most this many ticks' worth.
SHAKE_BUCKET_TICKS = env_int("SHAKE_BUCKET_TICKS", default=3, minimum=1, maximum=10)
# Issued prizes are written to the database this often (off the shake path).
SHAKE_FLUSH_SECONDS = env_float("SHAKE_FLUSH_SECONDS", default=0.2, minimum=0.01)
# The cross-process cap check (Redis) gives up after this long; shaking goes on.
SHAKE_REDIS_TIMEOUT_SECONDS = env_float("SHAKE_REDIS_TIMEOUT_SECONDS", default=0.05, minimum=0.001)
# The interval the client waits before its next shake (seed 004: 5 to 10 s), raised to
# BUSY_INTERVAL when the process has more than BUSY_SHAKES_PER_SECOND.
SHAKE_INTERVAL_SECONDS = env_int("SHAKE_INTERVAL_SECONDS", default=5, minimum=1)
SHAKE_BUSY_INTERVAL_SECONDS = env_int("SHAKE_BUSY_INTERVAL_SECONDS", default=10, minimum=1)
SHAKE_BUSY_SHAKES_PER_SECOND = env_int("SHAKE_BUSY_SHAKES_PER_SECOND", default=5000, minimum=1)
# A won prize must be opened within this long after its round ends; after that, the
# unopened prizes of dead reservations are recycled.
SHAKE_OPEN_SECONDS = env_int("SHAKE_OPEN_SECONDS", default=86_400, minimum=1)
# Access process slots: each live process claims one, and a round's prizes are split into
# this many slices by default (one per slot).
SHAKE_SLOTS = env_int("SHAKE_SLOTS", default=4, minimum=1, maximum=256)
# The registry's Redis key prefix: the access processes of one deployment share it.
SHAKE_REGISTRY = env_str("SHAKE_REGISTRY", default="shake")
# Each ASGI process runs the shake engine's background thread (registry, reservations);
# off only for in-process tests, which step it themselves.
SHAKE_ENGINE_THREAD = env_bool("SHAKE_ENGINE_THREAD", default=True)
# POST /api/shake answered in the event loop before Django when it is a plain shake by a
# ticket this process holds verified, with Django's answer (shake/fastpath.py); off: Django.
SHAKE_FAST_PATH = env_bool("SHAKE_FAST_PATH", default=True)
# Live control: the routes by which a change reaches every access process (any subset of
# pubsub, poll, client; all three in production), and how often each process re-reads its
# rounds from the database (the poll route; without it, every 10 s and new rounds only).
SHAKE_CONTROL_ROUTES = env_list("SHAKE_CONTROL_ROUTES", default=["pubsub", "poll", "client"])
if not set(SHAKE_CONTROL_ROUTES) <= {"pubsub", "poll", "client"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SHAKE_CONTROL_ROUTES: a subset of pubsub, poll, client.")
SHAKE_CONTROL_POLL_SECONDS = env_float("SHAKE_CONTROL_POLL_SECONDS", default=0.5, minimum=0.05)
# Reconciliation (shake.tasks.reconcile, daily at this UTC hour) redoes the credit of a
# prize opened this long ago and still not credited; recycling runs every RECYCLE_SECONDS.
SHAKE_CREDIT_SWEEP_AFTER_SECONDS = env_int(
    "SHAKE_CREDIT_SWEEP_AFTER_SECONDS", default=60, minimum=1
)
SHAKE_RECONCILE_HOUR = env_int("SHAKE_RECONCILE_HOUR", default=4, minimum=0, maximum=23)
SHAKE_RECYCLE_SECONDS = env_int("SHAKE_RECYCLE_SECONDS", default=300, minimum=10)
# Staggered groups (seed 003 错峰): users are dealt into this many groups by a stable hash;
# in a round with a stagger, group g starts g * the round's stagger after the round.
SHAKE_STAGGER_GROUPS = env_int("SHAKE_STAGGER_GROUPS", default=5, minimum=1, maximum=60)
# A sponsor packet's extra shares not passed on within this long after it was opened go
# back to the pool of a later round of its activity (recycled by the recycling pass).
SHAKE_SHARES_PASS_ON_SECONDS = env_int("SHAKE_SHARES_PASS_ON_SECONDS", default=3600, minimum=1)
# Sponsor assets (docs/shake.md): a client counts as online for ONLINE_SECONDS after its
# last report of what it holds; clients report every REPORT_SECONDS (the manifest says so).
SHAKE_ASSETS_ONLINE_SECONDS = env_int("SHAKE_ASSETS_ONLINE_SECONDS", default=180, minimum=10)
SHAKE_ASSETS_REPORT_SECONDS = env_int("SHAKE_ASSETS_REPORT_SECONDS", default=60, minimum=5)
if SHAKE_ASSETS_REPORT_SECONDS >= SHAKE_ASSETS_ONLINE_SECONDS:
    raise ImproperlyConfigured(
        "SHAKE_ASSETS_REPORT_SECONDS must be below SHAKE_ASSETS_ONLINE_SECONDS."
    )
# Sponsor assets an operator imports or uploads: at most MAX_BYTES each, in one of TYPES
# (Pillow's format names, of PNG, JPEG, GIF, WEBP), each checked by decoding it.
SHAKE_ASSET_MAX_BYTES = env_int("SHAKE_ASSET_MAX_BYTES", default=1024 * 1024, minimum=1024)
SHAKE_ASSET_TYPES = env_list("SHAKE_ASSET_TYPES", default=["PNG", "JPEG", "GIF", "WEBP"])
if not SHAKE_ASSET_TYPES or not set(SHAKE_ASSET_TYPES) <= {"PNG", "JPEG", "GIF", "WEBP"}:
    raise ImproperlyConfigured("SHAKE_ASSET_TYPES: some of PNG, JPEG, GIF, WEBP.")
# A new manifest version is pushed (a `shake_assets` sync entry) to PUSH_BATCH signed-in
# users per transaction, at most PUSH_USERS_PER_SECOND (0: unpaced), so that the clients
# told do not all fetch in one second; a push unfinished and not moving for
# PUSH_STALE_SECONDS (its worker died) is resumed from its cursor by the beat.
SHAKE_ASSETS_PUSH_BATCH = env_int("SHAKE_ASSETS_PUSH_BATCH", default=1000, minimum=1)
SHAKE_ASSETS_PUSH_USERS_PER_SECOND = env_int(
    "SHAKE_ASSETS_PUSH_USERS_PER_SECOND", default=0, minimum=0
)
SHAKE_ASSETS_PUSH_STALE_SECONDS = env_int("SHAKE_ASSETS_PUSH_STALE_SECONDS", default=120, minimum=1)
# Coupons (docs/shake.md "Coupons"): delivered to their businesses on payout_slow at each
# business's rate, slowed by SLOWDOWN_RATIO (down to MIN_FACTOR of it) when it times out or
# says "too fast", recovering by RECOVERY_PER_SECOND of its rate each second. A task waits
# up to TOKEN_WAIT_SECONDS for its turn, then comes back; a failed attempt is retried after
# RETRY_SECONDS, doubling, up to MAX_ATTEMPTS, then left to reconciliation and the
# winner's retry. A claim older than LEASE_SECONDS is taken over (its worker died). The
# winner is told the coupon arrives within ARRIVES_WITHIN_HOURS.
SHAKE_PAYOUT_SLOWDOWN_RATIO = env_float("SHAKE_PAYOUT_SLOWDOWN_RATIO", default=0.5, minimum=0.05)
SHAKE_PAYOUT_MIN_FACTOR = env_float("SHAKE_PAYOUT_MIN_FACTOR", default=0.05, minimum=0.01)
SHAKE_PAYOUT_RECOVERY_PER_SECOND = env_float(
    "SHAKE_PAYOUT_RECOVERY_PER_SECOND", default=0.1, minimum=0.001
)
if SHAKE_PAYOUT_SLOWDOWN_RATIO >= 1 or SHAKE_PAYOUT_MIN_FACTOR > 1:
    raise ImproperlyConfigured("SHAKE_PAYOUT_SLOWDOWN_RATIO is below 1, MIN_FACTOR at most 1.")
SHAKE_PAYOUT_TOKEN_WAIT_SECONDS = env_float(
    "SHAKE_PAYOUT_TOKEN_WAIT_SECONDS", default=2.0, minimum=0.1
)
SHAKE_PAYOUT_RETRY_SECONDS = env_float("SHAKE_PAYOUT_RETRY_SECONDS", default=5.0, minimum=0.01)
SHAKE_PAYOUT_MAX_ATTEMPTS = env_int("SHAKE_PAYOUT_MAX_ATTEMPTS", default=5, minimum=1)
SHAKE_PAYOUT_LEASE_SECONDS = env_int("SHAKE_PAYOUT_LEASE_SECONDS", default=60, minimum=1)
SHAKE_PAYOUT_ARRIVES_WITHIN_HOURS = env_int(
    "SHAKE_PAYOUT_ARRIVES_WITHIN_HOURS", default=24, minimum=1
)
CELERY_TASK_ROUTES["shake.tasks.reconcile"] = {"queue": "payout_slow"}
CELERY_TASK_ROUTES["shake.tasks.recycle"] = {"queue": "payout_slow"}
CELERY_TASK_ROUTES["shake.tasks.recycle_shares"] = {"queue": "payout_slow"}
CELERY_TASK_ROUTES["shake.tasks.settle"] = {"queue": "payout_slow"}
CELERY_TASK_ROUTES["shake.tasks.deliver_coupon"] = {"queue": "payout_slow"}
CELERY_TASK_ROUTES["shake.tasks.push_assets"] = {"queue": "default"}
CELERY_TASK_ROUTES["shake.tasks.resume_asset_pushes"] = {"queue": "default"}
CELERY_TASK_ROUTES["shake.tasks.*"] = {"queue": "payout_fast"}
CELERY_BEAT_SCHEDULE["shake-recycle"] = {
    "task": "shake.tasks.recycle",
    "schedule": float(SHAKE_RECYCLE_SECONDS),
}
CELERY_BEAT_SCHEDULE["shake-recycle-shares"] = {
    "task": "shake.tasks.recycle_shares",
    "schedule": float(SHAKE_RECYCLE_SECONDS),
}
CELERY_BEAT_SCHEDULE["shake-resume-asset-pushes"] = {
    "task": "shake.tasks.resume_asset_pushes",
    "schedule": max(float(SHAKE_ASSETS_PUSH_STALE_SECONDS) / 2, 1.0),
}
# Closing activities whose budget nothing can move any more (services.settlement).
CELERY_BEAT_SCHEDULE["shake-settle"] = {
    "task": "shake.tasks.settle",
    "schedule": float(SHAKE_RECYCLE_SECONDS),
}
CELERY_BEAT_SCHEDULE["shake-reconcile"] = {
    "task": "shake.tasks.reconcile",
    "schedule": crontab(minute=45, hour=SHAKE_RECONCILE_HOUR),
}

# --- HTTP API ---------------------------------------------------------------------
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", default=64 * 1024, minimum=1024)
# How deep JSON bodies and websocket frames may nest (wechat_core.jsoninput).
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", default=32, minimum=8, maximum=256)
API_PAGE_SIZE = env_int("API_PAGE_SIZE", default=50, minimum=1)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", default=200, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = AVATAR_MAX_BYTES
# Multipart bodies may carry one upload plus its form fields.
UPLOAD_MAX_BYTES = (
    max(AVATAR_MAX_BYTES, MESSAGING_IMAGE_MAX_BYTES, MESSAGING_FILE_MAX_BYTES) + 64 * 1024
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.TicketAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.HasTicket"],
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
        "wechat_core.api.schema.add_links",
        "wechat_core.admission.schema.add_overloaded_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PlatformEnum": "accounts.models.Platform",
        "FriendRequestStatusEnum": "accounts.models.FriendRequestStatus",
        "ConversationKindEnum": "messaging.models.ConversationKind",
        "MessageKindEnum": "messaging.models.MessageKind",
        "AttachmentKindEnum": "messaging.models.AttachmentKind",
        "ChangeActionEnum": "grayrelease.models.ChangeAction",
        "GuardActionEnum": "grayrelease.api.serializers.GUARD_ACTIONS",
        "ScheduleActionEnum": "grayrelease.api.serializers.SCHEDULE_ACTIONS",
        "RedPacketKindEnum": "redpackets.models.PacketKind",
        "RedPacketStateEnum": "redpackets.api.serializers.STATES",
        "RedPacketCreditEnum": "redpackets.models.CreditState",
        "RedPacketGrabOutcomeEnum": "redpackets.api.serializers.OUTCOMES",
        "ShakePrizeKindEnum": "shake.models.PrizeKind",
        "ShakeResultEnum": "shake.api.serializers.RESULTS",
        "ShakeCouponDeliveryEnum": "shake.models.DeliveryState",
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
# Content-Security-Policy (django-csp) on every response: scripts only from our own
# origin, plus inline ones carrying the request's nonce (the web client's import
# map); no eval, no plugins, no framing. Styles may be inline: Swagger UI, the
# developer console and the admin's widgets write style attributes, and a style
# cannot run code. Websockets may go to any host: the access endpoints come
# from the topology (GET /api/topology), which operators change while pages are
# open (failover to a new campus), and no injected script can run to use it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:", "blob:"],
        "connect-src": [csp.SELF, "ws:", "wss:"],
        "worker-src": [csp.SELF, "blob:"],  # ReDoc parses the schema in a worker
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}

# --- Logging: tickets and secrets are scrubbed from every record ----------------------
LOG_LEVEL = env_str("LOG_LEVEL", default="INFO")
# Installs the scrubbing for every record the process makes, whatever its handlers
# (Celery workers replace ours), then applies LOGGING (wechat_core.logging).
LOGGING_CONFIG = "wechat_core.logging.configure"
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
    raise ImproperlyConfigured("MONITORING_SYSTEM_WECHAT_ID must be listed in WECHAT_ID_RESERVED.")
# System accounts may write to anyone's chat without being their friend (messaging).
MESSAGING_SYSTEM_ACCOUNTS = frozenset({MONITORING_SYSTEM_WECHAT_ID.lower()})
# Delivery receipts: how old a message may be to count (older: catch-up, not delay),
# and how many one receipt may carry.
MONITORING_RECEIPT_MAX_AGE_SECONDS = env_int(
    "MONITORING_RECEIPT_MAX_AGE_SECONDS", default=600, minimum=1
)
MONITORING_RECEIPT_MAX_MESSAGES = env_int("MONITORING_RECEIPT_MAX_MESSAGES", default=100, minimum=1)
# Link statistics clients report (POST /api/messaging/link-stats): entries per request.
MONITORING_LINK_REPORT_MAX_ENTRIES = env_int(
    "MONITORING_LINK_REPORT_MAX_ENTRIES", default=20, minimum=1
)
# Traffic guard (seed 001 §11): a client repeating one request without progress more
# than this many times a minute is told to stop connecting for GUARD_BLOCK_SECONDS.
MONITORING_GUARD_ENABLED = env_bool("MONITORING_GUARD_ENABLED", default=True)
MONITORING_GUARD_REPEATS_PER_MINUTE = env_int(
    "MONITORING_GUARD_REPEATS_PER_MINUTE", default=60, minimum=2
)
if MONITORING_GUARD_REPEATS_PER_MINUTE <= 2 * 60 / MESSAGING_HEARTBEAT_SECONDS:
    # An idle client repeats the same heartbeat (answered the same way) at the
    # interval we give it: following the protocol must never get it blocked.
    raise ImproperlyConfigured(
        "MONITORING_GUARD_REPEATS_PER_MINUTE must exceed twice the heartbeats a minute "
        "(120 / MESSAGING_HEARTBEAT_SECONDS)."
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

# --- DR drill (drills/services.py, docs/deploy.md) ----------------------------
# Daily, one campus is blocked for DR_DRILL_BLOCK_SECONDS while DR_DRILL_PAIRS pairs of
# synthetic clients chat; the drill aborts (unblocks at once) when their failure rate
# rises above the baseline's by more than DR_DRILL_MAX_FAILURE_RATE_DELTA.
DR_DRILL_ENABLED = env_bool("DR_DRILL_ENABLED", default=True)
DR_DRILL_HOUR = env_int("DR_DRILL_HOUR", default=4, minimum=0, maximum=23)
DR_DRILL_BLOCK_SECONDS = env_float("DR_DRILL_BLOCK_SECONDS", default=180.0, minimum=1.0)
DR_DRILL_BASELINE_SECONDS = env_float("DR_DRILL_BASELINE_SECONDS", default=30.0, minimum=1.0)
DR_DRILL_PAIRS = env_int("DR_DRILL_PAIRS", default=4, minimum=1, maximum=100)
DR_DRILL_SEND_INTERVAL_SECONDS = env_float(
    "DR_DRILL_SEND_INTERVAL_SECONDS", default=1.0, minimum=0.05
)
DR_DRILL_SEND_TIMEOUT_SECONDS = env_float(
    "DR_DRILL_SEND_TIMEOUT_SECONDS", default=10.0, minimum=0.5
)
DR_DRILL_MAX_FAILURE_RATE_DELTA = env_float(
    "DR_DRILL_MAX_FAILURE_RATE_DELTA", default=0.01, minimum=0.0
)
DR_DRILL_ABORT_MIN_FAILURES = env_int("DR_DRILL_ABORT_MIN_FAILURES", default=3, minimum=1)
CELERY_TASK_ROUTES["drills.tasks.dr_drill"] = {"queue": "default"}
if DR_DRILL_ENABLED:
    CELERY_BEAT_SCHEDULE["drills-dr-drill"] = {
        "task": "drills.tasks.dr_drill",
        "schedule": crontab(minute=23, hour=DR_DRILL_HOUR),
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

# --- Shielding of failing instances (wechat_core/breakers.py, docs/overload.md) ----------
# Each process ejects an outbound instance (host:port) after this many consecutive
# failures or timeouts, refuses calls to it for BREAKER_RESET_SECONDS, then probes it.
BREAKER_FAILURES = env_int("BREAKER_FAILURES", default=5, minimum=1)
BREAKER_RESET_SECONDS = env_float("BREAKER_RESET_SECONDS", default=30.0, minimum=0.1)
BREAKER_TRACKED_INSTANCES = env_int("BREAKER_TRACKED_INSTANCES", default=10000, minimum=10)

# --- Admission control: FastReject by priority (docs/overload.md) -------------------------
ADMISSION_ENABLED = env_bool("ADMISSION_ENABLED", default=True)
# Overload: average queuing time over a window above this. DAGOR's 20 ms suits
# millisecond services; ours take 20-100 ms behind 16 slots, and at 20 ms FastReject
# refused half of a load the server then served (docs/performance.md, overload run 5).
ADMISSION_QUEUE_THRESHOLD_MS = env_float("ADMISSION_QUEUE_THRESHOLD_MS", default=100.0, minimum=1.0)
# A window ends after this long or this many requests, whichever comes first.
ADMISSION_WINDOW_SECONDS = env_float("ADMISSION_WINDOW_SECONDS", default=0.5, minimum=0.01)
ADMISSION_WINDOW_REQUESTS = env_int("ADMISSION_WINDOW_REQUESTS", default=2000, minimum=10)
# Share of admitted requests shed per overloaded window (at least / at most), and
# share re-admitted per calm one.
ADMISSION_SHED_STEP = env_float("ADMISSION_SHED_STEP", default=0.05, minimum=0.001)
ADMISSION_SHED_STEP_MAX = env_float("ADMISSION_SHED_STEP_MAX", default=0.5, minimum=0.001)
ADMISSION_RECOVER_STEP = env_float("ADMISSION_RECOVER_STEP", default=0.02, minimum=0.001)
# Retry-After of a refusal: this many seconds per throttle tier (clients add jitter).
ADMISSION_RETRY_AFTER_SECONDS = env_int("ADMISSION_RETRY_AFTER_SECONDS", default=2, minimum=1)
# Concurrent HTTP requests in Django per process (the worker pool whose queue is
# measured); long-poll routes and operators' pages do not count. 0: no bound.
ADMISSION_HTTP_WORKERS = env_int("ADMISSION_HTTP_WORKERS", default=16, minimum=0)
# Logins and registrations (argon2) run in a pool of their own: this many at a time
# per process (0: in the general slots, unbounded), and one is refused at once when
# the logins waiting ahead of it would keep it waiting longer than this (ms).
ADMISSION_LOGIN_WORKERS = env_int("ADMISSION_LOGIN_WORKERS", default=1, minimum=0)
ADMISSION_LOGIN_WAIT_MS = env_float("ADMISSION_LOGIN_WAIT_MS", default=1000.0, minimum=0.0)
# How often the event loop's lag and the thread pool's queue are probed (0: never).
ADMISSION_PROBE_SECONDS = env_float("ADMISSION_PROBE_SECONDS", default=0.1, minimum=0.0)
# Celery deadlines, seconds from publish (or ETA), by task name or queue ("*": the
# rest); 0 means none. Payouts have none: every order must reach reconciliation.
ADMISSION_TASK_DEADLINES: dict[str, float] = {
    "delivery": env_float("ADMISSION_DEADLINE_DELIVERY", default=300.0, minimum=0.0),
    "webhook": env_float("ADMISSION_DEADLINE_WEBHOOK", default=600.0, minimum=0.0),
    "monitoring": env_float("ADMISSION_DEADLINE_MONITORING", default=120.0, minimum=0.0),
    "replay": 0.0,
    "payout_fast": 0.0,
    "payout_slow": 0.0,
    "*": env_float("ADMISSION_DEADLINE_DEFAULT", default=900.0, minimum=0.0),
}
