"""Helpers for tests that chat over real websockets against live servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import websockets
from websockets.typing import Subprotocol

from devtools.processes import ServerProcess
from messaging.client import ChatClient
from tests.factories import Session

T = TypeVar("T")


def ws_url(server: ServerProcess) -> str:
    return server.url.replace("http://", "ws://") + "/ws/sync"


def client_for(session: Session, servers: list[ServerProcess], **options: Any) -> ChatClient:
    return ChatClient([ws_url(server) for server in servers], session.token, **options)


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
    """Run async test code from a sync test (the ORM stays outside the loop)."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def drain_messages(
    client: ChatClient, count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    """The next `count` message entries (other entries are skipped)."""
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        entry = await client.wait_for(lambda e: e["kind"] == "message", timeout)
        messages.append(entry["message"])
    return messages


class Raw:
    """A bare websocket speaking frames by hand, for protocol-level tests."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def reply_to(self, frame: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send a request and return the frame answering it (skipping notifies)."""
        await self.send(frame)
        while True:
            reply = await self.recv(timeout)
            if reply.get("id") == frame.get("id"):
                return reply


def raw_connect(server: ServerProcess, token: str) -> Any:
    protocols = [Subprotocol("wechat.sync.v1"), Subprotocol(f"ticket.{token}")]
    return websockets.connect(ws_url(server), subprotocols=protocols)
