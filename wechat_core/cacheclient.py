"""The shared cache's Redis connection, for the few callers that pipeline, and
the one way to open another Redis client.

Django's cache API costs one round trip per call; a hot path that needs several
commands at once (a counter with its expiry, one mark per message of a receipt)
pipelines them on the cache's own Redis client instead, with the cache's own
key names (`cache.make_key`). Where the cache is not Redis (the embedded mode),
callers fall back to the cache API.

Every caller of Redis here is best effort (it goes on without an answer), so a
command is retried at most REDIS_COMMAND_RETRIES times, at once: one replaces a
pooled connection that a Redis restart closed, and more would only hold requests
during an outage. Open every client with `redis_connect`: a client built as
`redis.Redis(...)` retries ten times with backoff by default, about 3 s a call
against a stopped Redis.

And each process shields a failing Redis like any other failing instance (seed
000, wechat_core.breakers): after BREAKER_FAILURES consecutive connection
failures or timeouts, its connections refuse at once (ConnectionError, which
every caller already takes as "Redis is down") for REDIS_BREAKER_RESET_SECONDS,
then one probe decides. A hung Redis then costs a request nothing instead of a
socket timeout per cache call. The cool-down is short because writes skipped
meanwhile (a version stamp, a rate-limit count) are the price of the shield.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.connection
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from wechat_core.breakers import BREAKER_REFUSED, breaker

REDIS_SERVICE = "redis"


class ShieldedConnection(redis.connection.Connection):
    """A Redis connection through its instance's breaker: connecting is refused
    while the instance is ejected; a failed connect or answer counts against it,
    an answer for it."""

    _failure_counted = False

    def _instance(self) -> str:
        return f"{self.host}:{self.port}"

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock:
            return
        guard = breaker(REDIS_SERVICE, self._instance())
        if not guard.admit():
            BREAKER_REFUSED.inc(REDIS_SERVICE)
            raise redis.ConnectionError(
                f"Redis at {self._instance()} is shielded for {guard.retry_in():.1f} s"
            )
        self._failure_counted = False
        try:
            super().connect_check_health(
                check_health=check_health, retry_socket_connect=retry_socket_connect
            )
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            if not self._failure_counted:  # the handshake's answer counted it already
                guard.record(ok=False)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        guard = breaker(REDIS_SERVICE, self._instance())
        try:
            response = super().read_response(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            guard.record(ok=False)
            self._failure_counted = True
            raise
        if guard.state != "closed" or guard.failures:
            guard.record(ok=True)
        return response


class ShieldedConnectionPool(redis.ConnectionPool):
    """A pool of `ShieldedConnection`s (for redis:// URLs; the cache's `pool_class`)."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        if url.startswith("redis://"):
            kwargs.setdefault("connection_class", ShieldedConnection)
        return super().from_url(url, **kwargs)


def redis_retry() -> Retry:
    """Immediate retries only: one replaces a pooled connection that a Redis restart
    closed; more would only make a caller wait for an outage to end."""
    return Retry(NoBackoff(), settings.REDIS_COMMAND_RETRIES)


def redis_connect(url: str, *, timeout: float) -> redis.Redis:
    """A Redis client that waits at most `timeout` to connect and for each answer."""
    shielded = {"connection_class": ShieldedConnection} if url.startswith("redis://") else {}
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=redis_retry(),
        **shielded,
    )


def cache_redis() -> redis.Redis | None:
    """The Redis client the default cache writes to, or None if it is not Redis."""
    backend = cache._cache  # type: ignore[attr-defined]
    if not isinstance(backend, RedisCacheClient):
        return None
    # Every write goes to the first server, whatever the key (RedisCacheClient).
    return backend.get_client(write=True)
