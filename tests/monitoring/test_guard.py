"""Traffic guard (seed 001 §11): a client repeating one request without progress is
told to stop for a while, over HTTP and over the SYNC websocket; counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from monitoring.metrics import sample_value
from monitoring.models import GuardBlock
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


@pytest.fixture(scope="module")
def guarded_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    server = start_asgi_server(
        log_dir=live_log_dir,
        name="daphne-guard",
        env={
            **live_env,
            "MONITORING_GUARD_REPEATS_PER_MINUTE": "10",
            "MONITORING_GUARD_BLOCK_SECONDS": "3",
        },
    )
    yield server
    server.stop()


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
