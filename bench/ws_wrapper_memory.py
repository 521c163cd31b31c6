"""Memory the monitoring wrapper adds to each idle websocket, measured in process.

    .venv/bin/python bench/ws_wrapper_memory.py [--connections 5000]

Holds `--connections` suspended connections of a minimal ASGI websocket app
(accept, one frame answered, then waiting for the next event, as an idle SYNC
link does), first bare and then the way wechat_core.asgi runs it under
monitoring.instrument.websocket's `watch()`, and reports the bytes tracemalloc
sees per connection for each, and their difference. No server, no sockets:
only the Python objects the wrapper keeps. bench/idle_connections.py measures
whole processes. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import secrets
import statistics
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from _setup import ROOT, emit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wechat_core.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ["MONITORING_GUARD_ENABLED"] = "false"  # the admission check is not kept
os.environ["MONITORING_HISTORY_ENABLED"] = "false"

Event = dict[str, Any]


async def app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Event]], send: Callable[[Event], Any]
) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await receive()  # one frame
    await send({"type": "websocket.send", "text": '{"type":"heartbeat.ack","id":1}'})
    await receive()  # then idle


async def hold(connections: int, *, wrapped: bool) -> float:
    """Bytes per connection while `connections` of them wait for their next event."""
    from monitoring.instrument.websocket import watch

    loop = asyncio.get_running_loop()
    gone: list[asyncio.Future[Event]] = []

    async def one() -> None:
        future: asyncio.Future[Event] = loop.create_future()
        gone.append(future)
        events: list[Event] = [
            {"type": "websocket.receive", "text": '{"type":"heartbeat","id":1}'},
            {"type": "websocket.connect"},
        ]

        async def receive() -> Event:
            return events.pop() if events else await future

        async def send(message: Event) -> None:
            return None

        scope = {"type": "websocket", "path": "/ws/sync", "headers": []}
        socket = watch(scope, receive, send) if wrapped else None
        if socket is None:
            await app(scope, receive, send)
            return
        try:
            await app(scope, socket.receive, socket.send)
        finally:
            socket.gone()

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tasks = [asyncio.create_task(one()) for _ in range(connections)]
    for _ in range(5):
        await asyncio.sleep(0)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    for future in gone:
        future.set_result({"type": "websocket.disconnect", "code": 1000})
    await asyncio.gather(*tasks)
    return used / connections


async def measure(connections: int, rounds: int) -> dict[str, Any]:
    bare, wrapped = [], []
    for _ in range(rounds):
        bare.append(await hold(connections, wrapped=False))
        wrapped.append(await hold(connections, wrapped=True))
    return {
        "connections": connections,
        "rounds": rounds,
        "bare_bytes_per_connection": round(statistics.median(bare)),
        "wrapped_bytes_per_connection": round(statistics.median(wrapped)),
        "wrapper_bytes_per_connection": round(statistics.median(wrapped) - statistics.median(bare)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.chdir(ROOT)
    import django

    django.setup()
    emit(asyncio.run(measure(args.connections, args.rounds)))


if __name__ == "__main__":
    main()
