"""The Python client (messaging/client.py) stays away from a server that shed it
(docs/protocol.md §2, §3 `throttle`, §6 close codes; docs/overload.md): a tier-2
throttle answering its `send` or `sync` holds its reconnects until `retry_after`
has passed, as an unsolicited one does, and a connection closed with 4013
without the throttle frame still keeps it from connecting anywhere for 2 s.

The server here is a small websocket server in the test playing an overloaded
one (a real peer behind the real protocol): it refuses what the test says, drops
the link, and notes when each connection arrived, on the client's own clock."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from messaging.client import SUBPROTOCOL, ChatClient
from tests.support.chat import run

RETRY_AFTER = 1.0  # what the refusals ask (seconds)
PAUSE_WITHOUT_FRAME = 2.0  # docs/protocol.md §2: a 4013 that came without its frame

HELLO = {"type": "hello", "protocol": 1, "user": 1, "device": 1, "max_seq": 0, "heartbeat": 30}


@dataclass
class Shedding:
    """What the server does: on the first connection, answer the first frame of type
    `refuse` with a tier-2 throttle and drop the link (or, with `refuse` "connect",
    close 4013 at once, saying nothing); every later connection is served."""

    refuse: str
    connected: list[tuple[float, str]] = field(default_factory=list)  # (when, path)
    refused_at: float | None = None
    sends: list[dict[str, Any]] = field(default_factory=list)
    reconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, ws: ServerConnection) -> None:
        self.connected.append((time.monotonic(), ws.request.path if ws.request else ""))
        first = len(self.connected) == 1
        if not first:
            self.reconnected.set()
        if first and self.refuse == "connect":
            self.refused_at = time.monotonic()
            await ws.close(4013, "overloaded")
            return
        await ws.send(json.dumps(HELLO))
        async for raw in ws:
            frame = json.loads(raw)
            if first and frame["type"] == self.refuse and self.refused_at is None:
                await ws.send(json.dumps(throttle(frame["id"])))
                self.refused_at = time.monotonic()
                await ws.close(1012, "restarting")  # the link is lost during the pause
                return
            await ws.send(json.dumps(self.answer(frame)))

    def answer(self, frame: dict[str, Any]) -> dict[str, Any]:
        if frame["type"] == "sync":
            return {"type": "sync.result", "id": frame["id"], "entries": [], "key": 0,
                    "more": False, "conversations": {}}  # fmt: skip
        if frame["type"] == "send":
            self.sends.append(frame)
            message = {"id": 7, "conversation": frame["conversation"], "seq": 1,
                       "client_msg_id": frame["client_msg_id"],
                       "created_at": "2026-12-07T10:00:00.000000+00:00",
                       "duplicate": len(self.sends) > 1}  # fmt: skip
            return {"type": "send.ack", "id": frame["id"], "message": message}
        return {"type": f"{frame['type']}.ack", "id": frame["id"]}


def throttle(request_id: str | None) -> dict[str, Any]:
    """FastReject's refusal of a request (docs/overload.md): tier 2, overloaded."""
    return {"type": "throttle", "id": request_id, "tier": 2, "retry_after": RETRY_AFTER,
            "reason": "overloaded", "code": "overloaded", "message": "Overloaded."}  # fmt: skip


async def serving(server: Shedding, paths: list[str], then: Any) -> Any:
    async with serve(server.handle, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)]) as s:
        port = s.sockets[0].getsockname()[1] if s.sockets else 0
        client = ChatClient([f"ws://127.0.0.1:{port}{path}" for path in paths], "t1.1.x")
        await client.start(wait=False)
        try:
            return await then(client)
        finally:
            await client.close()


@pytest.mark.parametrize("refused", ["send", "sync"])
def test_request_refused_with_tier_2__link_lost__no_reconnect_before_retry_after(
    refused: str,
) -> None:
    server = Shedding(refuse=refused)

    async def chat(client: ChatClient) -> dict[str, Any]:
        # when: the client sends, and the server answers its send (or its first
        # sync) with a tier-2 throttle, then the link drops
        ack = await client.send(5, {"kind": "text", "text": "hi"}, timeout=30)
        await asyncio.wait_for(server.reconnected.wait(), 30)
        return ack

    ack = run(serving(server, ["/ws/sync"], chat), timeout=60)

    # then: it did not connect again before retry_after had passed
    assert server.refused_at is not None
    assert len(server.connected) == 2, server.connected
    waited = server.connected[1][0] - server.refused_at
    assert waited >= RETRY_AFTER, f"reconnected {waited:.3f} s after a tier-2 refusal"
    # and: then it came back by itself, and its message went once it was let in
    assert ack["conversation"] == 5
    assert [frame["client_msg_id"] for frame in server.sends] == [ack["client_msg_id"]]


def test_connection_closed_4013_without_throttle_frame__waits_2_s_before_connecting_anywhere() -> (
    None
):
    server = Shedding(refuse="connect")

    async def connect(client: ChatClient) -> None:
        # when: its first connection is closed with 4013 at once, without the frame
        await asyncio.wait_for(client.connected.wait(), 30)

    run(serving(server, ["/a/ws/sync", "/b/ws/sync"], connect), timeout=60)

    # then: it connected again, to the other endpoint, only after the documented pause
    assert server.refused_at is not None
    (_first_at, first_path), (second_at, second_path) = server.connected
    assert (first_path, second_path) == ("/a/ws/sync", "/b/ws/sync")
    waited = second_at - server.refused_at
    assert waited >= PAUSE_WITHOUT_FRAME, f"reconnected {waited:.3f} s after close 4013"


@dataclass
class ReceiptServer:
    """Refuses the first connection as overloaded (the throttle frame, tier 2, then
    4013); serves the next: its sync brings message 11 from user 2, and its first
    receipt is refused with a tier-2 throttle (the link stays). Notes every frame of
    that link, in order."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        if self.connections == 1:
            await ws.send(json.dumps(throttle(None)))
            await ws.close(4013, "overloaded")
            return
        await ws.send(json.dumps({**HELLO, "tier": 0}))
        async for raw in ws:
            frame = json.loads(raw)
            self.frames.append(frame)
            refused = [f for f in self.frames[:-1] if f["type"] == "receipt"] == []
            if frame["type"] == "receipt" and refused:
                await ws.send(json.dumps(throttle(frame["id"])))
                continue
            if frame["type"] == "receipt":
                self.acked.set()
                await ws.send(json.dumps({"type": "receipt.ack", "id": frame["id"], "counted": 1}))
                continue
            if frame["type"] == "sync" and frame["key"] == 0:
                message = {"id": 11, "conversation": 5, "seq": 1, "sender": 2,
                           "kind": "text", "body": {"text": "hi"}}  # fmt: skip
                entry = {"seq": 1, "kind": "message", "message": message}
                await ws.send(json.dumps({"type": "sync.result", "id": frame["id"],
                                          "entries": [entry], "key": 1, "more": False,
                                          "conversations": {}}))  # fmt: skip
                continue
            await ws.send(json.dumps(Shedding(refuse="").answer(frame)))


def test_receipts__after_a_refused_connection_at_once__a_refused_one_again_once() -> None:
    server = ReceiptServer()

    async def chat(client: ChatClient) -> None:
        # when: its connection is refused as overloaded (tier 2), the next one is
        # let in, and its receipt for what it synced is refused once (tier 2)
        await asyncio.wait_for(server.acked.wait(), 60)

    async def serving_receipts() -> None:
        async with serve(
            server.handle, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)]
        ) as s:
            port = s.sockets[0].getsockname()[1] if s.sockets else 0
            client = ChatClient([f"ws://127.0.0.1:{port}/ws/sync"], "t1.1.x")
            await client.start(wait=False)
            try:
                await chat(client)
            finally:
                await client.close()

    run(serving_receipts(), timeout=90)

    # then: it reported the message on the new link before any heartbeat (the hello
    # said tier 0: the refusal's tier 2 lasted its pause only), and again after the
    # receipt's refusal: not lost, and no more than that
    kinds = [frame["type"] for frame in server.frames]
    assert "heartbeat" not in kinds[: kinds.index("receipt")], kinds
    receipts = [frame["messages"] for frame in server.frames if frame["type"] == "receipt"]
    assert [[m["id"] for m in messages] for messages in receipts] == [[11], [11]]
