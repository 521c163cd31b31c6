"""Publishing to the Channels layer from synchronous code without waiting for it.

Services run in worker threads; a channel-layer send from there used to hop to
the event loop and block the thread until Redis answered, which put a Redis
round trip (and the event loop's queue) into every send's latency. Instead,
each process runs one publisher thread with its own event loop and Redis
connections; services hand it messages (after commit) and go on.

Notifies are coalesced: if several are pending for the same group, only the
highest seq is sent. Delivery is best effort by design (a lost notify delays a
client until its next sync; DESIGN.md §4). With the in-memory layer of the
embedded mode, whose queues belong to the server's event loop, publishing stays
synchronous.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import OrderedDict
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer  # type: ignore[import-untyped]

from wechat_core.counters import counter_incr

logger = logging.getLogger(__name__)
DROPPED_COUNTER = "realtime.publish_failures"


class _Publisher:
    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        threading.Thread(target=self._run, name="realtime-publisher", daemon=True).start()
        self._ready.wait(5)

    def publish(self, group: str, message: dict[str, Any]) -> None:
        with self._lock:
            earlier = self._pending.get(group)
            if (
                earlier is not None
                and earlier.get("type") == message.get("type") == "sync.notify"
                and earlier["seq"] >= message["seq"]
            ):
                return
            self._pending[group] = message
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _take(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            batch = list(self._pending.items())
            self._pending.clear()
        return batch

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        layer = get_channel_layer()
        while True:
            await self._wake.wait()
            self._wake.clear()
            for group, message in self._take():
                try:
                    await layer.group_send(group, message)
                except Exception:
                    counter_incr(DROPPED_COUNTER)
                    logger.warning("could not publish to %s; clients will sync on their own", group)


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _background_publisher() -> _Publisher:
    global _publisher
    with _publisher_lock:
        # A forked process (Celery's prefork pool) needs its own thread.
        if _publisher is None or _publisher._pid != os.getpid():
            _publisher = _Publisher()
        return _publisher


def publish(group: str, message: dict[str, Any]) -> None:
    """Send `message` to a channel-layer group, soon, without waiting."""
    layer = get_channel_layer()
    if layer is None:
        return
    if type(layer).__name__ == "InMemoryChannelLayer":
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:
            counter_incr(DROPPED_COUNTER)
            logger.warning("could not publish to %s", group)
        return
    _background_publisher().publish(group, message)
