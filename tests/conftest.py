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
from django.test import override_settings

from accounts.tickets import ticket_cache_clear
from devtools.processes import (
    ServerProcess,
    collect_static,
    free_port,
    process_environment,
    spawn_asgi_server,
    spawn_celery_worker,
    start_celery_worker,
    stop_all,
    wait_until_healthy,
    wait_until_ready,
)
from monitoring.trafficguard import guard_reset_local
from tests.support.flush import flush_retrying_deadlocks
from tests.support.paysandbox import Sandbox, start_paysandbox
from wechat_core.breakers import forget_all as breakers_forget_all
from wechat_core.ratelimit import leases_clear
from wechat_core.sharedstate import forget_local_copies

flush_retrying_deadlocks()


@pytest.fixture(autouse=True)
def _fresh_shared_state() -> None:
    """Each test starts with an empty cache (rate limits, version stamps) and no
    process-local copies of shared state."""
    cache.clear()
    ticket_cache_clear()
    forget_local_copies()
    guard_reset_local()
    leases_clear()
    breakers_forget_all()


@pytest.fixture
def two_datacentres() -> Iterator[None]:
    """This process as data centre "sh" of two ("zz" the other), for replication
    tests that apply entries in process."""
    dcs = {"sh": {"index": 0, "endpoints": []}, "zz": {"index": 9, "endpoints": []}}
    with override_settings(
        DATACENTER="sh", DATACENTERS=dcs, MULTI_DATACENTER=True, REPLICATION_BROKER_URL="x"
    ):
        yield


@pytest.fixture(scope="session")
def live_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-logs")


@pytest.fixture(scope="session")
def paysandbox(live_log_dir: Path) -> Iterator[Sandbox]:
    """The payment provider's sandbox (a process), holding the tests' merchant key."""
    sandbox = start_paysandbox(log_dir=live_log_dir, key=settings.PAY_MCH_KEY)
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="session")
def live_env(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest, paysandbox: Sandbox
) -> dict[str, str]:
    """Environment for server processes, pointed at the test database and the payment
    sandbox, with the static files collected (the production settings serve a
    hashed manifest)."""
    # FastReject off: the suite's servers share two busy cores with Chromium, workers
    # and each other, and restart databases and brokers under themselves on purpose,
    # so their queuing time says nothing of their own overload and FastReject would
    # refuse the tests' own traffic. The tests of admission turn it on.
    env = process_environment(
        connection.settings_dict["NAME"],
        PAY_PROVIDER_URL=paysandbox.url,
        ADMISSION_ENABLED="false",
        # The shake engine of every ASGI process reserves prizes of any round it sees:
        # the suite's other servers would take slices of tests/shake's rounds. Its
        # tests run servers of their own with it on.
        SHAKE_ENGINE_THREAD="false",
    )
    collect_static(env)
    return env


@pytest.fixture(scope="session")
def asgi_servers(live_env: dict[str, str], live_log_dir: Path) -> Iterator[list[ServerProcess]]:
    """Two ASGI processes, daphne and uvicorn (the production default): 'every
    process' in the tests means at least these two, and both servers are served."""
    servers = [
        spawn_asgi_server(log_dir=live_log_dir, env=live_env, server=kind, name=f"{kind}-{index}")
        for index, kind in ((1, "daphne"), (2, "uvicorn"))
    ]
    for server in servers:
        wait_until_healthy(server)
    yield servers
    stop_all(servers)


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
    # These tests count a slow developer server's retries and notices; its breaker
    # (wechat_core.breakers, tested in tests/publicplatform/test_shielding.py) would
    # eject it after a few timeouts and cut the counts short.
    "BREAKER_FAILURES": "1000",
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
    """A daphne and the Procfile's Celery workers of their own for the
    official-accounts tests, on a private Redis broker (tests.support.platform).
    Returns (daphne, the worker of the `webhook` queue)."""
    from tests.support.platform import platform_stack_running

    with platform_stack_running(env=live_env | PLATFORM_ENV, log_dir=live_log_dir) as stack:
        yield stack.daphne, stack.workers.get("webhook", stack.workers["worker"])


# The wallet's stack: a daphne the sandbox notifies, and a Celery worker with beat on
# the payout queues (withdrawals; asking about orders unheard of for 3 s, every second).
WALLET_ENV = {"WALLET_ORDER_CHECK_AFTER_SECONDS": "3", "WALLET_ORDER_CHECK_SECONDS": "1"}


# Module scope: its beat asks the database about orders every second, and a session's
# worth of that (a transaction touching several tables while a transactional test's
# teardown truncates them all) made a later test's flush fail on a deadlock.
@pytest.fixture(scope="module")
def wallet_stack(
    live_env: dict[str, str], live_log_dir: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A daphne and a Celery worker (with beat) of their own for the wallet tests, on a
    private Redis broker so no other worker takes their tasks. Returns (daphne, worker)."""
    from devtools.processes import start_redis

    broker = start_redis(log_dir=live_log_dir)
    port = free_port()
    env = (
        live_env
        | WALLET_ENV
        | {
            "PAY_NOTIFY_URL": f"http://127.0.0.1:{port}/api/wallet/pay/notify",
            "CELERY_BROKER_URL": f"{broker.url}/0",
            "CELERY_RESULT_BACKEND": f"{broker.url}/0",
        }
    )
    daphne = spawn_asgi_server(log_dir=live_log_dir, env=env, name="daphne-wallet", port=port)
    worker = spawn_celery_worker(
        log_dir=live_log_dir, env=env, queues="payout_fast,payout_slow", beat=True, name="wallet"
    )
    wait_until_healthy(daphne)
    wait_until_ready(worker)
    yield daphne, worker
    stop_all([worker, daphne, broker])


# The longest modules, longest first (from `--durations`, 2026-12-07, after the
# bytecode caches): they run before everything else. `make test` hands modules to
# its workers one at a time as they free up (xdist --dist loadfile,
# --no-loadscope-reorder), so a module of minutes started last kept one worker busy
# alone while the other sat idle; and xdist's own order (most tests first) put
# exactly these few-test modules last. Then the other live modules, then the rest,
# each in collection order.
LONGEST_MODULES = (
    "tests/redpackets/test_concurrency_live.py",
    "tests/publicplatform/test_live.py",
    "tests/wechat_core/test_replication_live.py",
    "tests/shake/test_control_live.py",
    "tests/messaging/test_guarantees.py",
    "tests/web/test_chat.py",
    "tests/web/test_overload.py",
    "tests/shake/test_issuing_live.py",
    "tests/web/test_content.py",
    "tests/web/test_shake.py",
    "tests/publicplatform/test_embedded.py",
    "tests/messaging/test_delivery.py",
    "tests/drills/test_drills.py",
    "tests/wechat_core/test_admission_live.py",
    "tests/monitoring/test_alerts_e2e.py",
    "tests/wallet/test_embedded.py",
    "tests/wechat_core/test_embedded_mode.py",
    "tests/web/test_redpackets.py",
    "tests/wechat_core/test_api_schema.py",
    "tests/web/test_home.py",
    "tests/messaging/test_websocket.py",
    "tests/wechat_core/test_logging.py",
    "tests/messaging/test_api.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: index for index, module in enumerate(LONGEST_MODULES)}

    def order(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        if module in rank:
            return rank[module]
        return len(rank) + (0 if item.get_closest_marker("live") else 1)

    items.sort(key=order)  # stable: a module's tests keep their order
