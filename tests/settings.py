"""Settings for the test suite: the one settings module, fed the test environment.

Environment variables already set win (make test sets DATABASE_URL and
REDIS_URL); these defaults make a bare `pytest` work on a standard machine.
Redis db 15 holds the cache, db 14 the Celery broker and results, so clearing
the cache between tests never drops a queued task.
"""

import os
import tempfile

TEST_ENVIRONMENT = {
    "SECRET_KEY": "test-secret-key-not-for-production-4f1c9a0e7b2d",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/wechat",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
    "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/14",
    "CELERY_TASK_ALWAYS_EAGER": "false",
    "CACHE_KEY_PREFIX": "wechat-test",
    "DATABASE_POOL_MAX_SIZE": "60",
    # Developer servers in the tests listen on loopback.
    "PUBLICPLATFORM_ALLOW_PRIVATE_SERVER_URLS": "true",
    "MEDIA_ROOT": tempfile.mkdtemp(prefix="wechat-test-media-"),
    "STATIC_ROOT": tempfile.mkdtemp(prefix="wechat-test-static-"),
    # The test process and every server it starts share one fresh multiprocess
    # directory, as the processes of one host do (monitoring.exposition).
    "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="wechat-test-metrics-"),
    # Tests poll live servers for the same answer many times a minute (propagation,
    # logs); the guard's own tests start servers with a low limit.
    "MONITORING_GUARD_REPEATS_PER_MINUTE": "1000000",
}
for _name, _value in TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

from wechat_core.settings import *  # noqa: E402, F403

# Still argon2, with a small cost so that hundreds of registrations stay quick.
PASSWORD_HASHERS = ["tests.support.hashers.FastArgon2PasswordHasher"]

# Pages render without `collectstatic` (make run and make serve collect for real).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The test process itself drives many identical requests (schemathesis, lockout
# tests); the traffic guard is tested where it is enabled on purpose. Live
# servers read the environment and keep it on.
MONITORING_GUARD_ENABLED = False
