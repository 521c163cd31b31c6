"""The traffic guard's hot path (seed 001 §11, 偷流量): spotting a client stuck in a
loop, and refusing a blocked one. Called by the framework hooks for every HTTP
request and websocket frame (wechat_core.instrument).

A request makes **no progress** when it gets nothing new: the same request
answered the same way as this client's previous one on that endpoint (HTTP:
method, path and query, status and body; websocket: the frame without its id),
or a failure. More than MONITORING_GUARD_REPEATS_PER_MINUTE of those in one
minute from one client (its device, or its address without a ticket) on one
endpoint, and the client is blocked for MONITORING_GUARD_BLOCK_SECONDS
(services.guard): told, through the protocol's throttle answer, to stop for
that long.

Counting is per process and in memory (a looping client normally stays on one
link, hence one process; behind a balancer spreading its requests over P
processes the effective limit is up to P times higher). Blocks are shared: a
database row, and a version stamp that brings every process's copy up to date
within SHARED_STATE_POLL_SECONDS. With no block anywhere, checking costs one
dictionary lookup.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.utils import timezone

from monitoring.metrics import counter
from wechat_core.sharedstate import SharedSnapshot

GUARD_BLOCKS = counter(
    "monitoring_traffic_guard_blocks_total",
    "Clients the traffic guard told to stop (a loop without progress), by endpoint.",
    ["endpoint"],
    process_labels=True,
)
GUARD_REFUSED = counter(
    "monitoring_traffic_guard_refused_total",
    "Requests and connections refused because their client was blocked.",
    ["transport"],
    process_labels=True,
)


def _load_blocks() -> dict[str, float]:
    from monitoring.models import GuardBlock

    now = timezone.now()
    blocks: dict[str, float] = {}
    for identity, until in GuardBlock.objects.filter(until__gt=now).values_list(
        "identity", "until"
    ):
        blocks[identity] = max(blocks.get(identity, 0.0), until.timestamp())
    return blocks


BLOCKS = SharedSnapshot("traffic-guard", _load_blocks, max_age=30.0)
_local_blocks: dict[str, float] = {}  # this process's own, before the snapshot reloads


def blocked_for(identity: str) -> float:
    """Seconds until `identity` may come back; 0 when it is not blocked."""
    if not settings.MONITORING_GUARD_ENABLED:
        return 0.0
    blocks = BLOCKS.get()
    until = (
        max(blocks.get(identity, 0.0), _local_blocks.get(identity, 0.0))
        if (blocks or _local_blocks)
        else 0.0
    )
    return max(0.0, until - time.time())


def any_blocked() -> bool:
    return settings.MONITORING_GUARD_ENABLED and bool(BLOCKS.get() or _local_blocks)


class LoopDetector:
    """Per (client, endpoint): the last request's fingerprint and this minute's repeats."""

    def __init__(self) -> None:
        self._state: OrderedDict[tuple[str, str], list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def observe(self, identity: str, endpoint: str, fingerprint: int, *, failed: bool) -> int:
        """Record one request; returns its client's no-progress repeats this minute."""
        key = (identity, endpoint)
        minute = int(time.time() // 60)
        with self._lock:
            state = self._state.get(key)
            if state is None:
                state = self._state[key] = [minute, fingerprint, 0]
                while len(self._state) > settings.MONITORING_GUARD_TRACKED_CLIENTS:
                    self._state.popitem(last=False)
                if not failed:
                    return 0
            else:
                self._state.move_to_end(key)
            if state[0] != minute:
                state[0], state[2] = minute, 0
            if failed or state[1] == fingerprint:
                state[2] += 1
            state[1] = fingerprint
            return state[2]

    def forget(self, identity: str) -> None:
        with self._lock:
            for key in [k for k in self._state if k[0] == identity]:
                del self._state[key]


DETECTOR = LoopDetector()


def guard_count(identity: str, endpoint: str, fingerprint: int, *, failed: bool) -> int:
    """Count a request (in memory only: safe in the event loop). Returns its
    client's repeats when they passed the limit (then call `guard_trip`), else 0."""
    if not settings.MONITORING_GUARD_ENABLED:
        return 0
    repeats = DETECTOR.observe(identity, endpoint, fingerprint, failed=failed)
    return repeats if repeats > settings.MONITORING_GUARD_REPEATS_PER_MINUTE else 0


def guard_trip(identity: str, endpoint: str, repeats: int) -> float:
    """Block the client (a database write: call it from a thread); returns its seconds."""
    from monitoring.services.guard import guard_block

    DETECTOR.forget(identity)
    seconds = guard_block(identity=identity, endpoint=endpoint, repeats=repeats)
    _local_blocks[identity] = time.time() + seconds
    return float(seconds)


def guard_reset_local() -> None:
    """Forget this process's counts and own blocks (tests)."""
    _local_blocks.clear()
    with DETECTOR._lock:
        DETECTOR._state.clear()
