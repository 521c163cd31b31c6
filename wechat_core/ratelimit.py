"""Counters and locks in the shared cache for rate limits and lockouts.

Fixed windows are enough for most limits here: they protect against abuse, not
meter usage. Where "N in any minute" must hold across a window's edge (the
traffic guard: a loop straddling the minute would otherwise get twice its
allowance), `window_hit_sliding` weighs in the previous window too.
Keys hash the caller's identity so that phone numbers and e-mail addresses do
not end up in Redis key names. When the cache is unreachable the limiter lets
requests through (flexible availability) and logs that it did.

`window_hit_leased` is for limits on the hottest paths (a message send): a
process reserves a tenth of the limit at once and counts it out in memory, so
a user writing from one device reaches Redis once per tenth of the limit
instead of once per message. Reserved but unused counts still count, so a user
spread over P processes may be throttled up to (P - 1) tenths early, never late.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache

from wechat_core.cacheclient import cache_redis

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WindowCount:
    count: int
    retry_after: float


def _key(kind: str, scope: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"rl:{kind}:{scope}:{digest}"


def _incr(key: str, timeout: int, amount: int, *, also_read: str | None = None) -> tuple[int, int]:
    """Add to a counter that expires and return it, with the value of the
    counter `also_read` (0 when absent); one round trip on Redis (sends count
    every message, so this is on the hottest path)."""
    client = cache_redis()
    if client is not None:
        name = cache.make_key(key)
        pipe = client.pipeline()
        pipe.incrby(name, amount)
        pipe.expire(name, timeout, nx=True)
        if also_read is not None:
            pipe.get(cache.make_key(also_read))
        replies = pipe.execute()
        return int(replies[0]), int(replies[2] or 0) if also_read is not None else 0
    other = int(cache.get(also_read) or 0) if also_read is not None else 0
    cache.add(key, 0, timeout=timeout)
    try:
        return int(cache.incr(key, amount)), other
    except ValueError:  # expired between add and incr
        cache.set(key, amount, timeout=timeout)
        return amount, other


def window_hit(*, scope: str, identity: str, window_seconds: int, amount: int = 1) -> WindowCount:
    """Count `amount` events in the current fixed window; return the count so far."""
    now = time.time()
    window = int(now // window_seconds)
    key = f"{_key('win', scope, identity)}:{window}"
    retry_after = (window + 1) * window_seconds - now
    try:
        count, _ = _incr(key, window_seconds + 1, amount)
    except Exception:
        logger.warning("rate limit store unreachable; allowing %s", scope)
        return WindowCount(count=0, retry_after=0.0)
    return WindowCount(count=count, retry_after=retry_after)


def window_hit_sliding(
    *, scope: str, identity: str, window_seconds: int, amount: int = 1
) -> WindowCount:
    """Count `amount` events; return an estimate of the events in the last
    `window_seconds`, wherever the fixed windows' edges fall: this window's
    count plus the previous window's, weighted by the part of it that the
    last `window_seconds` still cover (events assumed even within a window).
    Same cost as `window_hit`: one round trip."""
    now = time.time()
    window = int(now // window_seconds)
    covered_of_previous = 1.0 - (now / window_seconds - window)
    base = _key("win", scope, identity)
    try:
        current, previous = _incr(
            f"{base}:{window}", 2 * window_seconds + 1, amount, also_read=f"{base}:{window - 1}"
        )
    except Exception:
        logger.warning("rate limit store unreachable; allowing %s", scope)
        return WindowCount(count=0, retry_after=0.0)
    return WindowCount(
        count=current + round(previous * covered_of_previous),
        retry_after=(window + 1) * window_seconds - now,
    )


@dataclass(slots=True)
class _Lease:
    """Counts next..end of one identity's window are this process's to hand out."""

    next: int
    end: int


# scope -> (window number, identity -> lease); a new window drops the old leases.
_leases: dict[str, tuple[int, dict[str, _Lease]]] = {}
_leases_lock = threading.Lock()


def window_hit_leased(*, scope: str, identity: str, window_seconds: int, limit: int) -> WindowCount:
    """Like `window_hit`, counted in leases of a tenth of `limit` (see the module)."""
    now = time.time()
    window = int(now // window_seconds)
    retry_after = (window + 1) * window_seconds - now
    with _leases_lock:
        held_window, leases = _leases.get(scope, (window, {}))
        if held_window != window:
            leases = {}
        _leases[scope] = (window, leases)
        lease = leases.get(identity)
        if lease is not None and lease.next <= lease.end:
            lease.next += 1
            return WindowCount(count=lease.next - 1, retry_after=retry_after)
    size = max(1, limit // 10)
    reserved = window_hit(
        scope=scope, identity=identity, window_seconds=window_seconds, amount=size
    )
    if reserved.count == 0:  # the store is unreachable: allowed, and nothing to lease
        return reserved
    first = reserved.count - size + 1
    with _leases_lock:
        held_window, leases = _leases.get(scope, (window, {}))
        if held_window == window:
            leases[identity] = _Lease(next=first + 1, end=reserved.count)
    return WindowCount(count=first, retry_after=reserved.retry_after)


def leases_clear() -> None:
    """Forget this process's leases (tests, after clearing the cache)."""
    with _leases_lock:
        _leases.clear()


def window_reset(*, scope: str, identity: str, window_seconds: int) -> None:
    """Start counting `identity` from zero (the previous window too, which a
    sliding count weighs in)."""
    window = int(time.time() // window_seconds)
    with _leases_lock:
        _leases.get(scope, (0, {}))[1].pop(identity, None)
    base = _key("win", scope, identity)
    try:
        cache.delete_many([f"{base}:{window}", f"{base}:{window - 1}"])
    except Exception:
        logger.warning("rate limit store unreachable; could not reset %s", scope)


def lock_set(*, scope: str, identity: str, seconds: int) -> float:
    unlock_at = time.time() + seconds
    try:
        cache.set(_key("lock", scope, identity), unlock_at, timeout=seconds)
    except Exception:
        logger.warning("rate limit store unreachable; could not lock %s", scope)
    return float(seconds)


def lock_remaining(*, scope: str, identity: str) -> float:
    """Seconds until the lock on this identity lifts; 0 when it is not locked."""
    try:
        unlock_at = cache.get(_key("lock", scope, identity))
    except Exception:
        logger.warning("rate limit store unreachable; treating %s as unlocked", scope)
        return 0.0
    if unlock_at is None:
        return 0.0
    return max(0.0, float(unlock_at) - time.time())


def lock_clear(*, scope: str, identity: str) -> None:
    try:
        cache.delete(_key("lock", scope, identity))
    except Exception:
        logger.warning("rate limit store unreachable; could not unlock %s", scope)
