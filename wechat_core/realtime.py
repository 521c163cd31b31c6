"""Realtime messages between processes over the Channels layer: publishing from
synchronous code without waiting, and one subscriber per ASGI process.

Publishing. Services run in worker threads; a channel-layer send from there used to hop to
the event loop and block the thread until Redis answered, which put a Redis
round trip (and the event loop's queue) into every send's latency. Instead,
each process runs one publisher thread with its own event loop and Redis
connections; services hand it messages (after commit) and go on.

Code that runs on the server's event loop (the websocket's sends with group
commit) publishes with `publish_from_loop` instead: from that loop, with no
thread hand-off, every message pending at once in one Redis pipeline.

Notifies are coalesced: if several are pending for the same group, only the
highest seq is sent. Delivery is best effort by design (a lost notify delays a
client until its next sync; DESIGN.md §4). With the in-memory layer of the
embedded mode, whose queues belong to the server's event loop, publishing stays
synchronous.

Subscribing. Channels' consumers give every connection its own channel, a
receive task and its own group memberships. A process holding ten thousand idle
websockets pays for all of that per connection, so instead each ASGI process
has one `ProcessHub`: one channel, joined once to each group any local
connection listens to, and one task that hands arriving messages to the local
listeners (docs/performance.md, idle websockets).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer  # type: ignore[import-untyped]
from django.conf import settings

from wechat_core.metrics import counter

logger = logging.getLogger(__name__)
PUBLISH_FAILURES = counter(
    "realtime_publish_failures_total",
    "Channel-layer messages (notifies, revocations) that could not be published.",
    process_labels=True,
)
JOIN_FAILURES = counter(
    "realtime_join_failures_total",
    "Group joins of a process hub that failed (retried by housekeeping).",
    process_labels=True,
)


def _add_coalesced(waiting: list[dict[str, Any]], message: dict[str, Any]) -> None:
    """Queue `message` behind `waiting` (one group's pending messages); a client
    only needs the newest seq, so a group has at most one pending notify."""
    if message.get("type") == "sync.notify":
        for index, earlier in enumerate(waiting):
            if earlier.get("type") == "sync.notify":
                if earlier["seq"] < message["seq"]:
                    waiting[index] = message
                return
    waiting.append(message)


async def _publish_batch(layer: Any, batch: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Publish a batch of groups' messages. On channels_redis's pub/sub layer (the
    production one) every PUBLISH of the batch for a Redis shard goes in one
    pipeline, one round trip, under the shard's own lock; on any other layer (or
    should channels_redis's internals change) one group_send each."""
    try:
        loop_layer = layer._get_layer()
        by_shard: dict[Any, list[tuple[str, bytes]]] = {}
        for group, messages in batch:
            channel = loop_layer._get_group_channel_name(group)
            shard = loop_layer._get_shard(channel)
            for message in messages:
                by_shard.setdefault(shard, []).append((channel, layer.serialize(message)))
        shards = [(shard, shard._lock, shard._ensure_redis) for shard in by_shard]
    except AttributeError:
        for group, messages in batch:
            for message in messages:
                await layer.group_send(group, message)
        return
    for shard, lock, ensure_redis in shards:
        async with lock:
            ensure_redis()
            pipeline = shard._redis.pipeline(transaction=False)
            for channel, payload in by_shard[shard]:
                pipeline.publish(channel, payload)
            await pipeline.execute()


class _LoopPublisher:
    """Publishing from the event loop itself: the sends that run on the loop
    (messaging.services.sending_async) notify their recipients from there, with no
    hand-off to the publisher thread. The messages published while the previous
    batch was in flight go out together, coalesced as in the thread."""

    def __init__(self, layer: Any) -> None:
        self._layer = layer
        self._pending: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def publish(self, group: str, message: dict[str, Any]) -> None:
        _add_coalesced(self._pending.setdefault(group, []), message)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = list(self._pending.items())
            self._pending.clear()
            try:
                await _publish_batch(self._layer, batch)
            except Exception:
                PUBLISH_FAILURES.inc(amount=sum(len(messages) for _, messages in batch))
                logger.warning(
                    "could not publish to %d groups; clients will sync on their own", len(batch)
                )


class _Publisher:
    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        threading.Thread(target=self._run, name="realtime-publisher", daemon=True).start()
        self._ready.wait(5)

    def publish(self, group: str, message: dict[str, Any]) -> None:
        with self._lock:
            _add_coalesced(self._pending.setdefault(group, []), message)
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _take(self) -> list[tuple[str, list[dict[str, Any]]]]:
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
            for group, messages in self._take():
                for message in messages:
                    try:
                        await layer.group_send(group, message)
                    except Exception:
                        PUBLISH_FAILURES.inc()
                        logger.warning(
                            "could not publish to %s; clients will sync on their own", group
                        )


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _background_publisher() -> _Publisher:
    global _publisher
    with _publisher_lock:
        # A forked process (Celery's prefork pool) needs its own thread.
        if _publisher is None or _publisher._pid != os.getpid():
            _publisher = _Publisher()
        return _publisher


_loop_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPublisher] = (
    weakref.WeakKeyDictionary()
)


def publish_from_loop(group: str, message: dict[str, Any]) -> None:
    """publish, called on the ASGI server's event loop (by code running there, such
    as the group commit's): sent from this loop, soon, without waiting or a thread."""
    layer = get_channel_layer()
    in_memory = type(layer).__name__ == "InMemoryChannelLayer"
    if layer is None or in_memory or not settings.REALTIME_PUBLISH_FROM_LOOP:
        publish(group, message)
        return
    loop = asyncio.get_running_loop()
    publisher = _loop_publishers.get(loop)
    if publisher is None:
        publisher = _loop_publishers[loop] = _LoopPublisher(layer)
    publisher.publish(group, {**message, "group": group})


def publish(group: str, message: dict[str, Any]) -> None:
    """Send `message` to a channel-layer group, soon, without waiting."""
    layer = get_channel_layer()
    if layer is None:
        return
    # Hubs receive every group on one channel; the name says whose message it is.
    message = {**message, "group": group}
    if type(layer).__name__ == "InMemoryChannelLayer":
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:
            PUBLISH_FAILURES.inc()
            logger.warning("could not publish to %s", group)
        return
    _background_publisher().publish(group, message)


# --- Subscribing: one hub per ASGI process --------------------------------------------


def user_group(user_id: int) -> str:
    """The group every live connection of a user listens to: sync notifies, and
    revocations of its tickets."""
    return f"user.{user_id}"


Listener = Callable[[dict[str, Any]], None]


class ProcessHub:
    """This process's end of the channel layer, shared by all its connections.

    `join(group, listener)` returns once the process receives the group's
    messages; listeners are plain functions called in the event loop and must
    not block (schedule a task to write to a socket). A listener that leaves
    stops being called at once; the process itself leaves the group a little
    later, in housekeeping, because a reconnecting client usually comes straight
    back. If the layer is down, joins still return (notifies are best effort)
    and housekeeping retries them.
    """

    def __init__(self, layer: Any) -> None:
        self._layer = layer
        self._channel: str | None = None
        self._listeners: dict[str, set[Listener]] = {}
        # A group's join in progress, or True once joined (no task kept per group).
        self._joins: dict[str, asyncio.Future[None] | bool] = {}
        self._leaves: dict[str, asyncio.Future[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._starting = asyncio.Lock()

    async def join(self, group: str, listener: Listener) -> None:
        channel = await self._start()
        self._listeners.setdefault(group, set()).add(listener)
        state = self._joins.get(group)
        if state is True:
            return
        joining = state if isinstance(state, asyncio.Future) else None
        if joining is None:
            joining = asyncio.ensure_future(self._group_add(group, channel))
            self._joins[group] = joining
        # Shielded: a connection that goes away mid-join must not cancel the
        # join that other connections are waiting for too.
        await asyncio.shield(joining)

    def leave(self, group: str, listener: Listener) -> None:
        listeners = self._listeners.get(group)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[group]

    def listening(self) -> int:
        """How many groups have local listeners (for tests and metrics)."""
        return len(self._listeners)

    async def _start(self) -> str:
        async with self._starting:
            if self._channel is None:
                channel = await self._layer.new_channel(prefix="hub.")
                loop = asyncio.get_running_loop()
                self._tasks = [
                    loop.create_task(self._read(channel)),
                    loop.create_task(self._housekeeping(channel)),
                ]
                self._channel = channel
            return self._channel

    async def _group_add(self, group: str, channel: str) -> None:
        leaving = self._leaves.get(group)
        if leaving is not None:  # the layer must see the leave before this join
            await leaving
        this = asyncio.current_task()
        try:
            await self._layer.group_add(group, channel)
        except Exception:
            if self._joins.get(group) is this:
                del self._joins[group]  # housekeeping tries again
            JOIN_FAILURES.inc()
            logger.warning("could not join %s; its clients will rely on heartbeats", group)
        else:
            if self._joins.get(group) is this:
                self._joins[group] = True

    async def _group_discard(self, group: str, channel: str) -> None:
        try:
            await self._layer.group_discard(group, channel)
        except Exception:
            logger.warning("could not leave %s", group)
        finally:
            self._leaves.pop(group, None)

    async def _read(self, channel: str) -> None:
        while True:
            try:
                message = await self._layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("channel layer receive failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            for listener in list(self._listeners.get(message.get("group", ""), ())):
                try:
                    listener(message)
                except Exception:
                    logger.exception("realtime listener failed")

    async def _housekeeping(self, channel: str) -> None:
        while True:
            await asyncio.sleep(settings.REALTIME_HOUSEKEEPING_SECONDS)
            self.settle(channel)

    def settle(self, channel: str | None = None) -> None:
        """Leave groups nobody listens to; retry joins that failed."""
        channel = channel or self._channel
        if channel is None:
            return
        for group in [
            g for g, state in self._joins.items() if state is True and g not in self._listeners
        ]:
            del self._joins[group]
            self._leaves[group] = asyncio.ensure_future(self._group_discard(group, channel))
        for group in [g for g in self._listeners if g not in self._joins]:
            self._joins[group] = asyncio.ensure_future(self._group_add(group, channel))


_hubs: dict[asyncio.AbstractEventLoop, ProcessHub] = {}


def hub() -> ProcessHub:
    """The hub of the running event loop (one per ASGI process in practice)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        for stale in [other for other in _hubs if other.is_closed()]:
            del _hubs[stale]
        found = _hubs[loop] = ProcessHub(get_channel_layer())
    return found
