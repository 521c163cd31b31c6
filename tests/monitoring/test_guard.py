"""Traffic guard (seed 001 §11): a client repeating one request without progress is
told to stop for a while, over HTTP and over the SYNC websocket; counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from accounts.services.operators import operator_grant
from monitoring.metrics import sample_value
from monitoring.models import GuardBlock
from monitoring.services.guard import guard_unblock
from tests.factories import login_session, make_user
from tests.support.chat import raw_connect, run
from tests.support.processes import ServerProcess, start_asgi_server


@pytest.mark.django_db
def test_http__same_answer_past_the_limit__429_with_retry_after_then_blocked(
    client, settings
) -> None:
    # given: the guard on, 5 repeats a minute allowed
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 5
    settings.MONITORING_GUARD_BLOCK_SECONDS = 30
    session = login_session(make_user())
    headers = {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}
    before = sample_value("monitoring_traffic_guard_blocks_total")
    # when: the same request gets the same answer again and again
    answers = [client.get("/api/contacts/friends", **headers).status_code for _ in range(8)]
    # then: after the limit the client is refused with the throttle body
    assert answers[:6] == [200] * 6
    assert answers[-1] == 429
    refused = client.get("/api/accounts/me", **headers)  # any endpoint: the client is blocked
    assert refused.status_code == 429
    assert 25 <= int(refused["Retry-After"]) <= 30
    assert refused.json()["code"] == "throttled"
    assert refused.json()["details"] | {"retry_after": 0} == {
        "retry_after": 0,
        "tier": 2,
        "reason": "traffic_guard",
    }
    assert sample_value("monitoring_traffic_guard_blocks_total") == before + 1
    block = GuardBlock.objects.get()
    assert (block.identity, block.endpoint) == (
        f"device:{session.device_id}",
        "GET api/contacts/friends",
    )
    # and: another client is not affected
    other = login_session(make_user())
    assert (
        client.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Ticket {other.token}").status_code
        == 200
    )
    # and: operators see the block on the overview
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    shown = client.get("/monitoring/data?page=overview").json()["guard"]
    assert [(b["identity"], b["endpoint"], b["repeats"]) for b in shown] == [
        (f"device:{session.device_id}", "GET api/contacts/friends", 6)
    ]


@pytest.mark.django_db
def test_http__requests_that_make_progress__are_never_blocked(client, settings) -> None:
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 3
    session = login_session(make_user())
    headers = {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}
    # different pages, different answers: progress
    statuses = [
        client.get(f"/api/contacts/friends?page_size={n}", **headers).status_code
        for n in range(1, 12)
    ]
    assert set(statuses) == {200}
    assert not GuardBlock.objects.exists()


@pytest.mark.django_db
def test_http__health_checks_repeating_by_design__never_counted_nor_refused(
    client, settings
) -> None:
    # given: a load balancer's address that is also blocked for looping elsewhere
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 3
    answers = [client.get("/api/contacts/friends").status_code for _ in range(6)]
    assert answers[-1] == 429  # the address looped on an endpoint without a ticket
    # when: it probes the health check over and over
    probes = [client.get("/api/health").status_code for _ in range(10)]
    # then: every probe is answered, and only the loop was blocked
    assert set(probes) == {200}
    assert list(GuardBlock.objects.values_list("endpoint", flat=True)) == [
        "GET api/contacts/friends"
    ]


@pytest.mark.django_db
def test_unblock__by_an_operator__lets_the_client_in_at_once_where_it_was_blocked(
    client, settings
) -> None:
    # given: a client blocked by this very process
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 3
    session = login_session(make_user())
    headers = {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}
    answers = [client.get("/api/contacts/friends", **headers).status_code for _ in range(6)]
    assert answers[-1] == 429
    # when: an operator ends the block (the admin's action)
    assert guard_unblock(identity=f"device:{session.device_id}") == 1
    # then: the next request is served here, not refused by a stale copy of the block
    assert client.get("/api/accounts/me", **headers).status_code == 200


GUARD_ENV = {"MONITORING_GUARD_REPEATS_PER_MINUTE": "10", "MONITORING_GUARD_BLOCK_SECONDS": "3"}


@pytest.fixture(scope="module")
def guarded_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    server = start_asgi_server(
        log_dir=live_log_dir, name="daphne-guard", env={**live_env, **GUARD_ENV}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second_guarded_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    server = start_asgi_server(
        log_dir=live_log_dir, name="uvicorn-guard", server="uvicorn", env={**live_env, **GUARD_ENV}
    )
    yield server
    server.stop()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_http__loop_spread_over_two_processes__blocked_near_the_limit_not_twice_it(
    guarded_server: ServerProcess, second_guarded_server: ServerProcess
) -> None:
    # given: two server processes allowing 10 repeats a minute, behind a "balancer"
    # that alternates between them
    session = login_session(make_user())
    servers = [guarded_server, second_guarded_server]
    # when: the client repeats one request
    statuses = []
    with httpx.Client(headers=session.headers) as http:
        for n in range(24):
            statuses.append(http.get(f"{servers[n % 2].url}/api/contacts/friends").status_code)
            if statuses[-1] == 429:
                break
    # then: both processes' counts add up. The shared count passes 10 at the 13th
    # request (each process's first one is no repeat); the next may reach the other
    # process before the block does (SHARED_STATE_POLL_SECONDS), so the 15th at the
    # latest is refused. Counting apart, the 23rd would be the first.
    assert statuses[-1] == 429, statuses
    assert len(statuses) <= 15, statuses
    assert GuardBlock.objects.filter(endpoint="GET api/contacts/friends").count() == 1


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_websocket__looping_sync_frames__throttle_frame_close_4029_and_refused_on_reconnect(
    guarded_server: ServerProcess,
) -> None:
    session = login_session(make_user())

    async def scenario() -> tuple[dict[str, Any], int, dict[str, Any], int]:
        async with raw_connect(guarded_server, session.token) as ws:
            json.loads(await ws.recv())  # hello
            frames = []
            try:
                for n in range(40):  # a client stuck syncing from the same key
                    await ws.send(json.dumps({"type": "sync", "key": 0, "id": n}))
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else 0
        throttle = next(f for f in frames if f["type"] == "throttle")
        async with raw_connect(guarded_server, session.token) as again:
            refused_frame = json.loads(await asyncio.wait_for(again.recv(), 5))
            with pytest.raises(websockets.ConnectionClosed) as closed_again:
                await asyncio.wait_for(again.recv(), 5)
        rcvd = closed_again.value.rcvd
        return throttle, code, refused_frame, rcvd.code if rcvd else 0

    throttle, code, refused, code_again = run(scenario())
    assert (throttle["tier"], throttle["reason"], code) == (2, "traffic_guard", 4029)
    assert 1 <= throttle["retry_after"] <= 3
    assert (refused["type"], code_again) == ("throttle", 4029)
    assert GuardBlock.objects.filter(endpoint="ws sync").count() == 1


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_websocket__reconnect_loop__stopped_with_throttle_and_4029(
    guarded_server: ServerProcess,
) -> None:
    # given: a client that connects and drops again and again
    session = login_session(make_user())

    async def scenario() -> tuple[int, dict[str, Any], int]:
        for attempt in range(1, 30):
            async with raw_connect(guarded_server, session.token) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if first["type"] == "throttle":
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(ws.recv(), 5)
                    rcvd = closed.value.rcvd
                    return attempt, first, rcvd.code if rcvd else 0
        raise AssertionError("never stopped")

    # when
    attempt, throttle, code = run(scenario())
    # then: past the limit (10 repeats after the first connect) it is told to stay away
    assert attempt == 12
    assert (throttle["tier"], throttle["reason"], code) == (2, "traffic_guard", 4029)
    assert GuardBlock.objects.filter(endpoint="ws connect").count() == 1
