"""The traffic guard's hot path (seed 001 §11, 偷流量): spotting a client stuck in a
loop, and refusing a blocked one. Called by the framework hooks for every HTTP
request, websocket handshake and websocket frame (wechat_core.instrument).

A request makes **no progress** when it gets nothing new: the same request
answered the same way as this client's previous one on that endpoint (HTTP:
method, path and query, status and body; websocket: the frame without its id),
or a failure; and every websocket handshake after the first in a minute (a
reconnect loop). More than MONITORING_GUARD_REPEATS_PER_MINUTE of those in one
minute from one client (its device, or its address without a ticket) on one
endpoint, and the client is blocked for MONITORING_GUARD_BLOCK_SECONDS
(services.guard): told, through the protocol's throttle answer, to stop for
that long.

Counting is in each process's memory first (`guard_count`: a dictionary
update, safe in the event loop), and shared across processes in steps: each
time a client's repeats in this process reach another tenth of the limit, that
tenth is added to a per-minute counter in the shared cache (`guard_escalate`,
one Redis round trip, from a thread). A client whose requests a balancer
spreads over P processes is therefore blocked after at most the limit plus P
tenths of it, not P times the limit, while a client that makes progress never
reaches the shared cache at all. If the cache is unreachable each process
still blocks on its own count.

Blocks are shared: a database row, and a version stamp that brings every
process's copy up to date within SHARED_STATE_POLL_SECONDS (the process that
wrote the block reloads at once). With no block anywhere, checking costs one
dictionary lookup.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.utils import timezone

from monitoring.metrics import counter
from wechat_core.ratelimit import window_hit, window_reset
from wechat_core.sharedstate import SharedSnapshot

logger = logging.getLogger(__name__)

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
# Each process shares its count in steps of this fraction of the limit: the
# overshoot per process is below one step, and a looping client costs one
# cache round trip per step.
SHARE_PARTS = 10
_SCOPE = "traffic-guard"
_MINUTE = 60


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


def blocked_for(identity: str) -> float:
    """Seconds until `identity` may come back; 0 when it is not blocked."""
    if not settings.MONITORING_GUARD_ENABLED:
        return 0.0
    blocks = BLOCKS.get()
    return max(0.0, blocks.get(identity, 0.0) - time.time()) if blocks else 0.0


def any_blocked() -> bool:
    return settings.MONITORING_GUARD_ENABLED and bool(BLOCKS.get())


class LoopDetector:
    """Per (client, endpoint): the last request's fingerprint and this minute's repeats."""

    def __init__(self) -> None:
        self._state: OrderedDict[tuple[str, str], list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def observe(self, identity: str, endpoint: str, fingerprint: int, *, failed: bool) -> int:
        """Record one request; returns its client's no-progress repeats this minute."""
        key = (identity, endpoint)
        minute = int(time.time() // _MINUTE)
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

    def clear(self) -> None:
        with self._lock:
            self._state.clear()


DETECTOR = LoopDetector()


def _share_step(limit: int) -> int:
    return max(1, math.ceil(limit / SHARE_PARTS))


def guard_count(identity: str, endpoint: str, fingerprint: int, *, failed: bool) -> int:
    """Count a request in this process's memory (safe in the event loop). Returns
    0 when nothing more is to be done, else this client's repeats here, which the
    caller hands to `guard_escalate` (from a thread: it may block)."""
    if not settings.MONITORING_GUARD_ENABLED:
        return 0
    repeats = DETECTOR.observe(identity, endpoint, fingerprint, failed=failed)
    limit = settings.MONITORING_GUARD_REPEATS_PER_MINUTE
    if repeats > limit or (repeats and repeats % _share_step(limit) == 0):
        return repeats
    return 0


def guard_escalate(identity: str, endpoint: str, repeats: int) -> float:
    """Past the limit here, or at a sharing step: add the step to the count of
    every process and block the client if the total passed the limit. Returns
    the block's seconds, 0 when the client may go on. Never raises: a guard
    that cannot write its block lets the request through (the loop is caught
    again at the next step)."""
    limit = settings.MONITORING_GUARD_REPEATS_PER_MINUTE
    try:
        if repeats <= limit:
            shared = window_hit(
                scope=_SCOPE, identity=f"{identity} {endpoint}", window_seconds=_MINUTE,
                amount=_share_step(limit),
            ).count  # fmt: skip
            if shared <= limit:
                return 0.0
            repeats = shared
        return _trip(identity, endpoint, repeats)
    except Exception:
        logger.warning("traffic guard could not block a client on %s", endpoint, exc_info=True)
        return 0.0


def _trip(identity: str, endpoint: str, repeats: int) -> float:
    from monitoring.services.guard import guard_block

    DETECTOR.forget(identity)
    window_reset(scope=_SCOPE, identity=f"{identity} {endpoint}", window_seconds=_MINUTE)
    return float(guard_block(identity=identity, endpoint=endpoint, repeats=repeats))


def guard_reset_local() -> None:
    """Forget this process's counts (tests)."""
    DETECTOR.clear()
