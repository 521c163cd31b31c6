"""Per-account semaphores in Redis: at most N calls in flight to one developer's
server, so one slow server holds at most N of the threads that call out and
cannot starve the others. Two kinds: `webhook` (pushes, in the webhook worker)
and `console` (the console's "test my webhook" and server verification, in the
ASGI processes). Slots expire (a crashed process cannot hold one for ever). The
embedded mode has no Redis and one process, whose pushes run on a few threads
(wechat_core.embedded): there the same semaphores live in the process.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings

from wechat_core.cacheclient import redis_connect

logger = logging.getLogger(__name__)

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  return 1
end
return 0
"""


_client: redis.Redis | None = None
_script: object = None
# Embedded mode: (kind, account id) -> {slot token: taken at}.
_local: dict[tuple[str, int], dict[str, float]] = {}
_local_lock = threading.Lock()


def _key(kind: str, account_id: int) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:pp:{kind}-slots:{account_id}"


def _redis() -> redis.Redis | None:
    """One client per process, with the script registered once (EVALSHA): the
    semaphore is on every push's path."""
    global _client, _script
    if not settings.REDIS_URL:
        return None
    if _client is None:
        _client = redis_connect(settings.REDIS_URL, timeout=1)
        _script = _client.register_script(_ACQUIRE)
    return _client


def slot_acquire(
    *, account_id: int, limit: int, hold_seconds: float, kind: str = "webhook"
) -> str | None:
    """A slot token, or None when `limit` calls of `kind` to this account are in flight."""
    token = uuid.uuid4().hex
    now = time.time()
    client = _redis()
    if client is None:
        return (
            token if _local_acquire((kind, account_id), limit, hold_seconds, token, now) else None
        )
    try:
        got = _script(keys=[_key(kind, account_id)], args=[now, hold_seconds, limit, token])  # type: ignore[operator]
    except Exception:
        logger.warning("%s slots unreachable; calling %s without a limit", kind, account_id)
        return token
    return token if int(got) == 1 else None


def _local_acquire(key: tuple[str, int], limit: int, hold: float, token: str, now: float) -> bool:
    with _local_lock:
        held = _local.setdefault(key, {})
        for stale in [t for t, taken in held.items() if taken <= now - hold]:
            del held[stale]
        if len(held) >= limit:
            return False
        held[token] = now
        return True


def slot_release(*, account_id: int, token: str, kind: str = "webhook") -> None:
    client = _redis()
    if client is None:
        with _local_lock:
            _local.get((kind, account_id), {}).pop(token, None)
        return
    try:
        client.zrem(_key(kind, account_id), token)
    except Exception:
        logger.warning("could not release a %s slot of %s; it expires", kind, account_id)


def call_hold_seconds() -> float:
    """The longest one call to a developer's server may hold a slot: a connect and
    a read each up to the timeout, and some slack."""
    return float(settings.PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS) * 2 + 5


@contextmanager
def console_slot(*, account_id: int) -> Iterator[None]:
    """One of the account's PUBLICPLATFORM_CONSOLE_CALLS_PER_ACCOUNT console calls,
    or ConsoleBusy: a console request waits on the developer's server, so many
    at once would hold as many server threads."""
    from publicplatform.exceptions import ConsoleBusy

    limit = settings.PUBLICPLATFORM_CONSOLE_CALLS_PER_ACCOUNT
    hold = call_hold_seconds()
    token = slot_acquire(account_id=account_id, limit=limit, hold_seconds=hold, kind="console")
    if token is None:
        raise ConsoleBusy(
            f"{limit} test{'s' if limit > 1 else ''} or verification{'s' if limit > 1 else ''} "
            "of this account's server are running; try again when they end.",
            retry_after=settings.PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS,
            details={"limit": limit},
        )
    try:
        yield
    finally:
        slot_release(account_id=account_id, token=token, kind="console")
