"""What a Redis outage costs a request: the time of one best-effort Redis call
with Redis up, refusing connections (stopped) and hanging (accepting, never
answering). Two kinds of caller:

- `cache`: a rate-limit count through Django's cache
  (`wechat_core.ratelimit.window_hit`, one pipelined round trip), production
  cache settings (one immediate retry, the process's breaker on the instance:
  wechat_core.cacheclient) against the same without them;
- `client`: a PING on a client the code opens itself (the shake engine's, the
  webhook concurrency limiter's), `redis_connect` against `redis.Redis.from_url`
  with the same timeouts and redis-py 8's default retries (ten, with backoff).

    .venv/bin/python bench/redis_outage.py

Prints JSON: per scenario and settings, the calls made, the mean and the largest
time per call in milliseconds, and how many reached the server (connections).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from _setup import configure, emit

CALLS = {"up": 2000, "refused": 20, "hanging": 20}
# redis-py's defaults take seconds per call against a failing Redis: fewer calls.
DEFAULT_CALLS = {"up": 2000, "refused": 3, "hanging": 2}


class Hanging:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                return


def refused_port() -> int:
    probe = socket.create_server(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def run(location: str, options: dict[str, Any], calls: int) -> dict[str, float]:
    from django.conf import settings
    from django.test import override_settings

    from wechat_core import breakers, ratelimit

    breakers.forget_all()
    caches = {"default": {**settings.CACHES["default"], "LOCATION": location, "OPTIONS": options}}
    times = []
    with override_settings(CACHES=caches):
        for n in range(calls):
            started = time.perf_counter()
            ratelimit.window_hit(scope="bench", identity=str(n), window_seconds=60)
            times.append(time.perf_counter() - started)
    return {
        "calls": calls,
        "mean_ms": round(1000 * sum(times) / len(times), 3),
        "max_ms": round(1000 * max(times), 3),
    }


def run_client(client: Any, calls: int) -> dict[str, float]:
    import redis

    from wechat_core import breakers

    breakers.forget_all()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        with contextlib.suppress(redis.RedisError):
            client.ping()
        times.append(time.perf_counter() - started)
    return {
        "calls": calls,
        "mean_ms": round(1000 * sum(times) / len(times), 3),
        "max_ms": round(1000 * max(times), 3),
    }


def main() -> None:
    configure()
    import logging

    from django.conf import settings

    logging.disable(logging.WARNING)  # "rate limit store unreachable", once per call
    production = dict(settings.CACHES["default"]["OPTIONS"])
    defaults = {k: production[k] for k in ("socket_connect_timeout", "socket_timeout")}
    hanging = Hanging()
    locations = {
        "up": settings.CACHES["default"]["LOCATION"],
        "refused": f"redis://127.0.0.1:{refused_port()}/0",
        "hanging": f"redis://127.0.0.1:{hanging.port}/0",
    }
    import redis

    from wechat_core.cacheclient import redis_connect

    results: dict[str, Any] = {"cache": {}, "client": {}}
    for scenario, location in locations.items():
        cache_results = results["cache"][scenario] = {}
        client_results = results["client"][scenario] = {}
        for name, options, calls in (
            ("production", production, CALLS[scenario]),
            ("without", defaults, DEFAULT_CALLS[scenario]),
        ):
            before = len(hanging.held)
            cache_results[name] = run(location, options, calls)
            if scenario == "hanging":
                cache_results[name]["connections"] = len(hanging.held) - before
        for name, client, calls in (
            ("redis_connect", redis_connect(location, timeout=1), CALLS[scenario]),
            (
                "redis_py_defaults",
                redis.Redis.from_url(location, socket_timeout=1, socket_connect_timeout=1),
                DEFAULT_CALLS[scenario],
            ),
        ):
            before = len(hanging.held)
            client_results[name] = run_client(client, calls)
            if scenario == "hanging":
                client_results[name]["connections"] = len(hanging.held) - before
    emit(
        {
            "socket_timeout_s": production["socket_timeout"],
            "breaker_failures": settings.BREAKER_FAILURES,
            "redis_command_retries": settings.REDIS_COMMAND_RETRIES,
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
