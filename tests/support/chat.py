"""Helpers for tests that chat over real websockets against live servers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from messaging.client import ChatClient
from tests.factories import Session
from tests.support.processes import ServerProcess

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
