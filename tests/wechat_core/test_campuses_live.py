"""Three campuses serving at once (seed 000, 三园区容灾): three ASGI processes
labelled sh-a, sh-b and sh-c on one database and Redis. Blocking sh-b with the
audited switch moves its live Python clients to the other campuses within
seconds (a `move` frame, then close 4010), they resume from their sync key and
nothing is lost; new connections there are refused with the endpoints to use;
unblocking brings it back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from devtools.processes import ServerProcess
from messaging.client import ChatClient
from messaging.services.conversations import direct_open
from tests.factories import login_session, make_friends, make_user
from tests.support.campuses import CAMPUSES, campuses_running, set_blocked
from tests.support.chat import raw_connect, run, ws_url
from wechat_core.campuses import CLOSE_MOVED

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def campuses(
    live_env: dict[str, str], live_log_dir: Path, celery_worker: ServerProcess
) -> Iterator[dict[str, ServerProcess]]:
    with campuses_running(env=live_env, log_dir=live_log_dir) as servers:
        yield servers


def test_blocking_a_campus__moves_its_live_clients__nothing_lost__unblocking_brings_it_back(
    campuses: dict[str, ServerProcess],
) -> None:
    urls = {code: ws_url(server) for code, server in campuses.items()}
    # given: six pairs of friends; each receiver first connects to one campus (two on sh-b)
    pairs = []
    for n in range(6):
        sender, receiver = make_user(nickname=f"s{n}"), make_user(nickname=f"r{n}")
        make_friends(sender, receiver)
        s_session, r_session = login_session(sender), login_session(receiver)
        chat = direct_open(ticket=s_session.ticket, user_id=sender.pk, peer_id=receiver.pk)
        pairs.append((s_session, r_session, chat.pk, CAMPUSES[n % 3]))
    per_sender = 30

    async def scenario() -> dict[str, Any]:
        def endpoints(first: str) -> list[str]:
            return [urls[first], *(urls[c] for c in CAMPUSES if c != first)]

        senders = [ChatClient(endpoints(home), s.token) for s, _, _, home in pairs]
        receivers = [ChatClient(endpoints(home), r.token) for _, r, _, home in pairs]
        clients = senders + receivers
        await asyncio.gather(*(c.start() for c in clients))
        on_b = [c for c in clients if c.current_endpoint == urls["sh-b"]]
        assert len(on_b) == 4  # two pairs homed on sh-b, senders and receivers
        blocked = asyncio.Event()

        async def send_all(client: ChatClient, chat: int) -> None:
            for i in range(per_sender):
                await client.send(chat, {"text": f"m{i}"}, timeout=60)
                if i == per_sender // 3:
                    await blocked.wait()  # a third before the block, the rest during it
                await asyncio.sleep(0.02)

        async def block() -> dict[str, Any]:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(set_blocked, "sh-b", True)
            started = time.monotonic()
            blocked.set()
            while any(c.moves == 0 or not c.connected.is_set() for c in on_b):
                assert time.monotonic() - started < 30, [c.moves for c in on_b]
                await asyncio.sleep(0.05)
            moved_after = time.monotonic() - started
            # new connections to the blocked campus are refused, with the endpoints to use
            refused_ws = await _refused_websocket(campuses["sh-b"], pairs[0][0].token)
            async with httpx.AsyncClient(base_url=campuses["sh-b"].url) as http:
                refused_http = await http.get("/api/accounts/me", headers=pairs[0][0].headers)
                health = await http.get("/api/health")
            return {
                "moved_after": moved_after, "ws": refused_ws, "http": refused_http,
                "health": health.status_code,
            }  # fmt: skip

        outcome: dict[str, Any]
        outcome, *_ = await asyncio.gather(
            block(), *(send_all(c, chat) for c, (_, _, chat, _) in zip(senders, pairs, strict=True))
        )
        # everything reaches the receivers, each message once and in order
        received: dict[int, list[str]] = {}
        for receiver, (_, _, chat, _) in zip(receivers, pairs, strict=True):
            texts: list[str] = []
            while len(texts) < per_sender:
                entry = await receiver.wait_for(is_message, timeout=60)
                assert entry["message"]["conversation"] == chat
                texts.append(entry["message"]["body"]["text"])
            received[chat] = texts
        outcome["received"] = received
        outcome["moved"] = {c.current_endpoint for c in on_b}
        outcome["moves_elsewhere"] = sum(c.moves for c in clients if c not in on_b)
        await asyncio.gather(*(c.close() for c in clients))
        # unblocking brings it back: a new connection there gets its hello
        await asyncio.to_thread(set_blocked, "sh-b", False)
        deadline = time.monotonic() + 30
        while True:
            async with raw_connect(campuses["sh-b"], pairs[0][0].token) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if first["type"] == "hello":
                break
            assert time.monotonic() < deadline, first
            await asyncio.sleep(0.1)
        outcome["after_unblock"] = first["type"]
        return outcome

    # when: sh-b is blocked while they chat, then unblocked
    outcome = run(scenario(), timeout=240)

    # then: sh-b's clients moved to the other campuses within seconds
    assert outcome["moved_after"] < 10
    assert outcome["moved"] <= {ws_url(campuses["sh-a"]), ws_url(campuses["sh-c"])}
    assert outcome["moves_elsewhere"] == 0
    # and: nothing was lost or repeated
    for texts in outcome["received"].values():
        assert texts == [f"m{i}" for i in range(per_sender)]
    # and: a new websocket there got a move frame, then close 4010
    frame, code = outcome["ws"]
    assert (frame["type"], frame["reason"]) == ("move", "campus_blocked")
    assert frame["campus"] == "sh-b"
    assert set(frame["endpoints"]) == {ws_url(campuses["sh-a"]), ws_url(campuses["sh-c"])}
    assert frame["retry"]["spread_seconds"] == 0.5
    assert code == CLOSE_MOVED
    # and: HTTP there is refused with the endpoints too, operators' pages still served
    assert outcome["http"].status_code == 503
    body = outcome["http"].json()
    assert body["code"] == "campus_blocked"
    assert set(body["endpoints"]) == set(frame["endpoints"])
    assert outcome["health"] == 200
    # and: unblocked, sh-b takes connections again
    assert outcome["after_unblock"] == "hello"


def is_message(entry: dict[str, Any]) -> bool:
    return bool(entry["kind"] == "message")


async def _refused_websocket(server: ServerProcess, token: str) -> tuple[dict[str, Any], int]:
    async with raw_connect(server, token) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code is not None
        return frame, ws.close_code
