"""Cost of checking a ticket, in this process: at the edge and in the data layer.

    .venv/bin/python bench/tickets.py [--iterations 20000]

Prints JSON: microseconds per call for ticket_verify with the process cache
warm (the steady state), ticket_verify with the cache cleared before every
call (a database query each time), and ticket_require (the data layer's check).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

from _setup import configure, emit


def per_call_us(function: Callable[[], object], iterations: int) -> float:
    for _ in range(min(iterations, 200)):  # warm-up
        function()
    started = time.perf_counter()
    for _ in range(iterations):
        function()
    return (time.perf_counter() - started) / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    configure()

    from accounts.models import Platform
    from accounts.services.login import login
    from accounts.services.registration import user_create
    from accounts.tickets import ticket_cache_clear, ticket_require, ticket_verify
    from accounts.types import DeviceInfo

    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    user = user_create(phone=None, email=email, password="bench-passphrase-1", nickname="Bench")
    device = DeviceInfo(platform=Platform.OTHER, client_version="1.0.0", name="bench")
    token = login(identifier=email, password="bench-passphrase-1", device=device, ip=None).ticket
    verified = ticket_verify(token=token)

    def cold() -> None:
        ticket_cache_clear()
        ticket_verify(token=token)

    results = {
        "verify_cached_us": per_call_us(lambda: ticket_verify(token=token), args.iterations),
        "require_cached_us": per_call_us(
            lambda: ticket_require(verified, user_id=user.pk), args.iterations
        ),
        "verify_uncached_us": per_call_us(cold, max(200, args.iterations // 40)),
    }
    emit(
        {
            "benchmark": "tickets",
            "iterations": args.iterations,
            "database": "postgresql",
            **{key: round(value, 2) for key, value in results.items()},
            "uncached_to_cached_ratio": round(
                results["verify_uncached_us"] / results["verify_cached_us"], 1
            ),
        }
    )


if __name__ == "__main__":
    main()
