"""The database connection pool of a real server when PostgreSQL drops its
connections (a failover, a restart): no request pays for a dead connection."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connection

from devtools.processes import ServerProcess, start_asgi_server
from tests.factories import PASSWORD, device_json, make_user
from tests.support.chat import raw_connect

APP_NAME = "pool-test-server"
POOL_SIZE = 8
# psycopg's pool waits 0, 1, 2, 4 s... between failed checks: more dead connections
# than this allows for would fail the first request if they were tried one by one.
POOL_TIMEOUT_SECONDS = 5


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    params = connection.get_connection_params()
    params.pop("pool", None)
    params.pop("application_name", None)
    return psycopg.connect(**params, autocommit=True)


def server_connections() -> int:
    with _admin_connection() as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
        ).fetchone()
    return int(str(row[0])) if row else 0


def terminate_server_connections() -> int:
    with _admin_connection() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [APP_NAME],
        ).fetchall()
    return len(rows)


@pytest.fixture(scope="module")
def pooled_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    """A server whose pool keeps POOL_SIZE connections, each named so the test finds them."""
    env = live_env | {
        "DATABASE_URL": f"{live_env['DATABASE_URL']}?application_name={APP_NAME}",
        "DATABASE_POOL_MIN_SIZE": str(POOL_SIZE),
        "DATABASE_POOL_TIMEOUT": str(POOL_TIMEOUT_SECONDS),
    }
    server = start_asgi_server(log_dir=live_log_dir, env=env, server="uvicorn", name="pooled")
    yield server
    server.stop()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_pool__connections_terminated_under_a_running_server__next_requests_succeed(
    pooled_server: ServerProcess,
) -> None:
    # given: a signed-in user, and the server's pool full of idle connections
    server = pooled_server
    user = make_user(email="pool@example.com")
    body = {"identifier": user.email, "password": PASSWORD, "device": device_json()}
    token = httpx.post(f"{server.url}/api/accounts/login", json=body).json()["ticket"]
    headers = {"Authorization": f"Ticket {token}"}
    deadline = time.monotonic() + 30
    while server_connections() < POOL_SIZE:
        assert time.monotonic() < deadline, "the pool never filled"
        time.sleep(0.05)
    # when: PostgreSQL terminates every one of them (as a failover or restart does)
    assert terminate_server_connections() >= POOL_SIZE
    # then: every request after it is answered, over HTTP and over the websocket
    statuses = [
        httpx.get(f"{server.url}/api/contacts/friends", headers=headers, timeout=60).status_code
        for _ in range(2 * POOL_SIZE)
    ]
    assert statuses == [200] * (2 * POOL_SIZE)
    assert terminate_server_connections() >= 1

    async def syncs() -> list[str]:
        async with raw_connect(server, token) as ws:
            await ws.recv()  # hello
            answers = []
            for n in range(2 * POOL_SIZE):
                await ws.send(f'{{"type": "sync", "id": {n}, "key": 0}}')
                answers.append(json.loads(await ws.recv())["type"])
            return answers

    assert asyncio.run(syncs()) == ["sync.result"] * (2 * POOL_SIZE)
