"""Fixtures shared by the whole suite.

Unit tests of services and selectors run on Django's PostgreSQL test database
inside a rolled-back transaction. Tests marked `live` start real processes
(daphne, Celery) against the same database and must use committed data
(`@pytest.mark.django_db(transaction=True)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from accounts.tickets import ticket_cache_clear
from monitoring.guard import guard_reset_local
from tests.support.processes import (
    ServerProcess,
    collect_static,
    process_environment,
    start_asgi_server,
    start_celery_worker,
)
from wechat_core.ratelimit import leases_clear
from wechat_core.sharedstate import forget_local_copies


@pytest.fixture(autouse=True)
def _fresh_shared_state() -> None:
    """Each test starts with an empty cache (rate limits, version stamps) and no
    process-local copies of shared state."""
    cache.clear()
    ticket_cache_clear()
    forget_local_copies()
    guard_reset_local()
    leases_clear()


@pytest.fixture(scope="session")
def live_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-logs")


@pytest.fixture(scope="session")
def live_env(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for server processes, pointed at the test database, with the
    static files collected (the production settings serve a hashed manifest)."""
    env = process_environment(connection.settings_dict["NAME"])
    collect_static(env)
    return env


@pytest.fixture(scope="session")
def asgi_servers(live_env: dict[str, str], live_log_dir: Path) -> Iterator[list[ServerProcess]]:
    """Two ASGI processes, daphne and uvicorn (the production default): 'every
    process' in the tests means at least these two, and both servers are served."""
    servers = [
        start_asgi_server(log_dir=live_log_dir, env=live_env, server=kind, name=f"{kind}-{index}")
        for index, kind in ((1, "daphne"), (2, "uvicorn"))
    ]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def celery_worker(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker = start_celery_worker(
        log_dir=live_log_dir,
        env=live_env,
        queues=",".join(settings.CELERY_QUEUE_NAMES),
        include="tests.monitoring.sample_tasks",  # a task with no monitoring code in it
    )
    yield worker
    worker.stop()


# Settings of the official-accounts stack: short webhook timeouts so that a slow
# developer server costs seconds, one push in flight per account so that the
# per-account limit shows, and access tokens living a few seconds so that
# expiry and refresh can be watched.
PLATFORM_ENV = {
    "PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS": "1",
    "PUBLICPLATFORM_WEBHOOK_RETRY_DELAY_SECONDS": "0.1",
    "PUBLICPLATFORM_WEBHOOK_CONCURRENCY_PER_ACCOUNT": "1",
    "PUBLICPLATFORM_WEBHOOK_SLOT_WAIT_SECONDS": "0.2",
    "PUBLICPLATFORM_ACCESS_TOKEN_TTL_SECONDS": "4",
    "PUBLICPLATFORM_MASS_SEND_BATCH": "250",
}


@pytest.fixture(scope="session")
def platform_stack(
    live_env: dict[str, str], live_log_dir: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A daphne and a Celery worker of their own for the official-accounts tests,
    on a private Redis broker, so no other worker (with other settings) takes
    their webhook tasks. Returns (daphne, worker)."""
    from tests.support.processes import start_redis

    broker = start_redis(log_dir=live_log_dir)
    env = live_env | PLATFORM_ENV | {
        "CELERY_BROKER_URL": f"{broker.url}/0", "CELERY_RESULT_BACKEND": f"{broker.url}/0",
    }  # fmt: skip
    daphne = start_asgi_server(log_dir=live_log_dir, env=env, name="daphne-platform")
    worker = start_celery_worker(log_dir=live_log_dir, env=env, queues="webhook", name="platform")
    yield daphne, worker
    worker.stop()
    daphne.stop()
    broker.stop()
