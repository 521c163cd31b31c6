"""Settings for the test suite: the one settings module, fed the test environment.

Environment variables already set win (make test sets DATABASE_URL and
REDIS_URL); these defaults make a bare `pytest` work on a standard machine.
Redis db 15 holds the cache, db 14 the Celery broker and results, so clearing
the cache between tests never drops a queued task.
"""

import os
import secrets
import tempfile

TEST_ENVIRONMENT = {
    # A real key, as the production layout requires; the servers a run starts share it.
    "SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/wechat",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
    "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/14",
    "CELERY_TASK_ALWAYS_EAGER": "false",
    "CACHE_KEY_PREFIX": "wechat-test",
    "DATABASE_POOL_MAX_SIZE": "60",
    # The merchant key shared with the payment sandbox the tests start.
    "PAY_MCH_KEY": "test-merchant-key-7c1e9b2a4d6f8e03",
    # Developer servers in the tests listen on loopback (and nothing else is allowed).
    "PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS": "127.0.0.0/8,::1/128",
    "MEDIA_ROOT": tempfile.mkdtemp(prefix="wechat-test-media-"),
    "STATIC_ROOT": tempfile.mkdtemp(prefix="wechat-test-static-"),
    # The test process and every server it starts share one fresh multiprocess
    # directory, as the processes of one host do (monitoring.exposition).
    "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="wechat-test-metrics-"),
    # Tests poll live servers for the same answer many times a minute (propagation,
    # logs); the guard's own tests start servers with a low limit.
    "MONITORING_GUARD_REPEATS_PER_MINUTE": "1000000",
}


def _isolate_parallel_worker() -> None:
    """`make test` runs the suite in parallel processes (pytest-xdist). pytest-django
    gives each its own test database (test_wechat_gw1 ...); here each gets its own
    Redis databases (cache 15, broker 14 for gw0; 13 and 12 for gw1, ...) and its own
    key prefix, because pub/sub channels (the channel layer) are not per database,
    and its own media, static and metrics directories."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        # One process: the broker is the database below the cache's too, so a run
        # pointed at its own TEST_REDIS_URL does not share (and flush) the default
        # broker database 14 with another run on the machine.
        base, cache_db = os.environ.get("REDIS_URL", TEST_ENVIRONMENT["REDIS_URL"]).rsplit("/", 1)
        if "CELERY_BROKER_URL" not in os.environ and cache_db.isdigit() and int(cache_db) >= 1:
            os.environ["CELERY_BROKER_URL"] = os.environ["CELERY_RESULT_BACKEND"] = (
                f"{base}/{int(cache_db) - 1}"
            )
        return
    index = int(worker[2:])
    base, cache_db = os.environ.get("REDIS_URL", TEST_ENVIRONMENT["REDIS_URL"]).rsplit("/", 1)
    own_db = int(cache_db) - 2 * index
    if own_db < 1:
        raise RuntimeError(f"{worker}: too many parallel workers for Redis databases")
    os.environ["REDIS_URL"] = f"{base}/{own_db}"
    if index or "CELERY_BROKER_URL" not in os.environ:
        os.environ["CELERY_BROKER_URL"] = os.environ["CELERY_RESULT_BACKEND"] = (
            f"{base}/{own_db - 1}"
        )
    os.environ["CACHE_KEY_PREFIX"] = f"{TEST_ENVIRONMENT['CACHE_KEY_PREFIX']}-{worker}"
    # A worker inherits the controller's environment: its own directories, or one
    # worker's collectstatic and metrics land in the other's.
    for name in ("MEDIA_ROOT", "STATIC_ROOT", "PROMETHEUS_MULTIPROC_DIR"):
        os.environ[name] = tempfile.mkdtemp(prefix=f"wechat-test-{worker}-{name.lower()}-")


_isolate_parallel_worker()
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

# The test process steps the shake engine itself (tests/shake); live servers run its
# background thread as production does.
SHAKE_ENGINE_THREAD = False
