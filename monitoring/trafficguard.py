"""The traffic guard's hot path (seed 001 §11, 偷流量): spotting a client stuck in a
loop, and refusing a blocked one. Called by the framework hooks for every HTTP
request, websocket handshake and websocket frame (monitoring.instrument).

A request makes **no progress** when it gets nothing new: the same request
answered the same way as this client's previous one on that endpoint (HTTP:
method, path and query, status and body; websocket: the frame and its answer,
without their ids), or a failure; and every websocket handshake after the first in a minute (a
reconnect loop). More than MONITORING_GUARD_REPEATS_PER_MINUTE of those in one
minute from one client (its device, or its address without a ticket) on one
endpoint, and the client is blocked for MONITORING_GUARD_BLOCK_SECONDS
(services.trafficguard): told, through the protocol's throttle answer, to stop for
that long.

Counting is in each process's memory first (`guard_count`: a dictionary
update, safe in the event loop), and shared across processes in steps: each
time a client's repeats in this process reach another tenth of the limit, that
tenth is added to a per-minute counter in the shared cache (only requests
without progress count, so the shared count never exceeds the true one) (`guard_escalate`,
one Redis round trip, from a thread). A client whose requests a balancer
spreads over P processes is therefore blocked after at most the limit plus P
tenths of it, not P times the limit, while a client that makes progress never
reaches the shared cache at all. If the cache is unreachable each process
still blocks on its own count. "In one minute" means any 60 seconds: both
counts weigh in the previous minute (`window_hit_sliding`), so a loop that
straddles a minute's edge is not allowed twice the limit.

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

from wechat_core.metrics import counter
from wechat_core.ratelimit import window_hit_sliding, window_reset
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
    """Per (client, endpoint): the last request's fingerprint, and the no-progress
    repeats of this minute and of the one before (for a count over the last 60
    seconds wherever the minute's edge falls)."""

    def __init__(self) -> None:
        self._state: OrderedDict[tuple[str, str], list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def observe(
        self, identity: str, endpoint: str, fingerprint: int, *, failed: bool
    ) -> tuple[int, int]:
        """Record one request. Returns (0, 0) when it made progress, else its
        client's no-progress repeats this minute and in the last 60 seconds
        (estimated, as `window_hit_sliding` does), this one included.

        Only a request that adds to the count may report it: a request that made
        progress once reported the standing count too, and since the count then
        stood at a sharing step, every later request of a client making progress
        added another step to the shared count (issue 11: repeats=66 in a block
        after 6 empty syncs and 11 that each fetched a message)."""
        key = (identity, endpoint)
        now = time.time()
        minute = int(now // _MINUTE)
        with self._lock:
            state = self._state.get(key)
            if state is None:
                state = self._state[key] = [minute, fingerprint, 0, 0]
                while len(self._state) > settings.MONITORING_GUARD_TRACKED_CLIENTS:
                    self._state.popitem(last=False)
                if not failed:
                    return 0, 0
            else:
                self._state.move_to_end(key)
            if state[0] != minute:
                state[3] = state[2] if state[0] == minute - 1 else 0
                state[0], state[2] = minute, 0
            repeated = failed or state[1] == fingerprint
            state[1] = fingerprint
            if not repeated:
                return 0, 0
            state[2] += 1
            covered_of_previous = 1.0 - (now / _MINUTE - minute)
            return state[2], state[2] + round(state[3] * covered_of_previous)

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
    this_minute, last_sixty_seconds = DETECTOR.observe(
        identity, endpoint, fingerprint, failed=failed
    )
    limit = settings.MONITORING_GUARD_REPEATS_PER_MINUTE
    if last_sixty_seconds > limit or (this_minute and this_minute % _share_step(limit) == 0):
        return last_sixty_seconds
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
            shared = window_hit_sliding(
                scope=_SCOPE,
                identity=f"{identity} {endpoint}",
                window_seconds=_MINUTE,
                amount=_share_step(limit),
            ).count
            if shared <= limit:
                return 0.0
            repeats = shared
        return _trip(identity, endpoint, repeats)
    except Exception:
        logger.warning("traffic guard could not block a client on %s", endpoint, exc_info=True)
        return 0.0


def _trip(identity: str, endpoint: str, repeats: int) -> float:
    from monitoring.services.trafficguard import guard_block

    DETECTOR.forget(identity)
    window_reset(scope=_SCOPE, identity=f"{identity} {endpoint}", window_seconds=_MINUTE)
    return float(guard_block(identity=identity, endpoint=endpoint, repeats=repeats))


def guard_reset_local() -> None:
    """Forget this process's counts (tests)."""
    DETECTOR.clear()
