"""Redis clients are best effort: a failing Redis costs a caller one immediate
retry (REDIS_COMMAND_RETRIES), not the ten with backoff of a client built as
`redis.Redis(...)`; and each process shields a failing Redis (connections
refused at once) until a probe finds it back."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from tests.support.links import Link
from tests.support.waiting import eventually
from wechat_core import breakers, ratelimit
from wechat_core.cacheclient import redis_connect


class FailingRedis:
    """A TCP server in place of Redis that accepts every connection and then either
    closes it at once (`hang=False`: a Redis restarting, or a proxy in front of a
    dead one) or never answers (`hang=True`: a hung Redis, whose kernel still
    accepts), counting the connections."""

    def __init__(self, *, hang: bool) -> None:
        self.hang = hang
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.hang:
                self._held.append(connection)
            else:
                connection.close()

    def close(self) -> None:
        self.listener.close()
        for connection in self._held:
            connection.close()


@contextmanager
def failing_redis(*, hang: bool) -> Iterator[FailingRedis]:
    server = FailingRedis(hang=hang)
    try:
        yield server
    finally:
        server.close()


def test_redis_connect__server_drops_every_connection__one_try_and_the_settings_retries() -> None:
    with failing_redis(hang=False) as server:
        client = redis_connect(f"redis://127.0.0.1:{server.port}/0", timeout=1)
        with pytest.raises(redis.ConnectionError):
            client.get("anything")
        assert server.accepted == 1 + settings.REDIS_COMMAND_RETRIES


def test_cache__server_drops_every_connection__rate_limit_lets_through_after_one_retry(
    caplog: Any,
) -> None:
    # given: the production cache settings, pointed at a Redis that drops connections
    with failing_redis(hang=False) as server:
        production = settings.CACHES["default"]
        caches = {"default": {**production, "LOCATION": f"redis://127.0.0.1:{server.port}/0"}}
        with override_settings(CACHES=caches):
            # when: a rate-limited call counts
            hit = ratelimit.window_hit(scope="s", identity="a", window_seconds=60)
        # then: it was let through after one try and one retry
        assert hit.count == 0
        assert server.accepted == 1 + settings.REDIS_COMMAND_RETRIES == 2
    assert "rate limit store unreachable" in caplog.text


def _cache_at(port: int, *, timeout: float) -> dict[str, Any]:
    production = settings.CACHES["default"]
    options = {**production["OPTIONS"], "socket_timeout": timeout, "socket_connect_timeout": 1}
    return {
        "default": {**production, "LOCATION": f"redis://127.0.0.1:{port}/0", "OPTIONS": options}
    }


def test_hung_redis__after_the_breakers_failures__no_longer_waited_for(settings: Any) -> None:
    # given: a process that ejects an instance after 4 failures, and a Redis that hangs
    settings.BREAKER_FAILURES = 4
    settings.REDIS_BREAKER_RESET_SECONDS = 300
    with failing_redis(hang=True) as server:
        with override_settings(CACHES=_cache_at(server.port, timeout=0.2)):
            # when: ten rate-limited calls each try the cache
            hits = [
                ratelimit.window_hit(scope="s", identity="a", window_seconds=60) for _ in range(10)
            ]
        # then: every call went on without Redis; only the first two (a try and a
        # retry each) reached it, the eight others were refused without connecting
        assert [hit.count for hit in hits] == [0] * 10
        assert server.accepted == 4
        assert breakers.state("redis", f"127.0.0.1:{server.port}") == "open"


def test_redis_back__the_probe_after_the_cool_down__closes_the_breaker(settings: Any) -> None:
    # given: the test Redis behind a link, cut until the process ejected it
    settings.BREAKER_FAILURES = 2
    settings.REDIS_BREAKER_RESET_SECONDS = 0.5
    redis_address = urlsplit(settings.REDIS_URL)
    link = Link(redis_address.hostname or "127.0.0.1", redis_address.port or 6379)
    try:
        client = redis_connect(f"redis://127.0.0.1:{link.port}/0", timeout=1)
        link.cut()
        for _ in range(3):
            with pytest.raises(redis.ConnectionError):
                client.ping()
        assert breakers.state("redis", f"127.0.0.1:{link.port}") == "open"
        # when: Redis is reachable again
        link.restore()
        # then: within the cool-down calls are still refused at once; after it, the
        # probe gets through and closes the breaker
        with pytest.raises(redis.ConnectionError, match="shielded"):
            client.ping()
        eventually(lambda: _pings(client), what="the probe reaches Redis again")
        assert breakers.state("redis", f"127.0.0.1:{link.port}") == "closed"
    finally:
        link.close()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
