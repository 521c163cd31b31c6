"""A lean websocket load generator for the SYNC protocol (raw frames, no outbox),
so that what the benchmarks measure is the server."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

_ids = itertools.count()


async def open_link(url: str, ticket: str) -> tuple[ClientConnection, dict[str, Any]]:
    protocols = [Subprotocol("wechat.sync.v1"), Subprotocol(f"ticket.{ticket}")]
    link = await connect(url, subprotocols=protocols, max_size=16 * 1024 * 1024, ping_interval=None)
    hello = json.loads(await link.recv())
    return link, hello


async def request(link: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send one frame and return the reply with its id (notifies are skipped)."""
    request_id = next(_ids)
    await link.send(json.dumps({**frame, "id": request_id}))
    while True:
        reply: dict[str, Any] = json.loads(await link.recv())
        if reply.get("id") == request_id:
            return reply


async def send_text(link: ClientConnection, conversation: int, text: str) -> float:
    """Send one message; return the seconds until its ack."""
    started = time.perf_counter()
    client_msg_id = f"b{next(_ids)}-{time.time_ns()}"
    reply = await request(
        link,
        {
            "type": "send",
            "conversation": conversation,
            "client_msg_id": client_msg_id,
            "content": {"text": text},
        },
    )
    if reply.get("type") != "send.ack":
        raise RuntimeError(f"send failed: {reply}")
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0)}
