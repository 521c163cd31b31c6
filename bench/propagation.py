"""How long a revocation or a campus block takes to reach other processes.

    .venv/bin/python bench/propagation.py [--trials 30]

Starts two daphne processes. For each trial it logs a user in, has both servers
serve (and cache) the ticket, revokes it from this process, and times until
each server refuses it; likewise it flips a campus switch and times until each
server's /api/topology shows it. Prints JSON with p50/p95/max in milliseconds.
The design bound is SHARED_STATE_POLL_SECONDS (0.2 s) plus one request; the
requirement is one second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
from _setup import configure, emit


def wait_ms(condition: Callable[[], bool], limit: float = 5.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if condition():
            return (time.perf_counter() - started) * 1000
        time.sleep(0.002)
    return float("inf")


def refuses(client: httpx.Client, url: str, headers: dict[str, str]) -> bool:
    return client.get(f"{url}/api/accounts/me", headers=headers).status_code == 401


def shows(client: httpx.Client, url: str, blocked: bool) -> bool:
    campuses = client.get(f"{url}/api/topology").json()["campuses"]
    return any(c["code"] == "bx-a" and c["blocked"] is blocked for c in campuses)


def describe(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    env = configure()

    from django.conf import settings

    from accounts.models import Platform
    from accounts.services.devices import logout
    from accounts.services.login import login
    from accounts.services.registration import user_create
    from accounts.tickets import ticket_verify
    from accounts.types import DeviceInfo
    from devtools.processes import start_asgi_server
    from wechat_core.models import Campus, DataCenter
    from wechat_core.services import campus_set_blocked

    log_dir = Path(tempfile.mkdtemp(prefix="bench-propagation-"))
    servers = [start_asgi_server(log_dir=log_dir, env=env, name=f"d{n}") for n in (1, 2)]
    client = httpx.Client(timeout=5)
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    user_create(phone=None, email=email, password="bench-passphrase-1", nickname="Bench")
    device = DeviceInfo(platform=Platform.OTHER, client_version="1.0.0", name="bench")
    datacenter, _ = DataCenter.objects.get_or_create(code="bx", defaults={"name": "Bench"})
    Campus.objects.get_or_create(code="bx-a", defaults={"datacenter": datacenter, "name": "B"})

    revocations: list[float] = []
    switches: list[float] = []
    try:
        for trial in range(args.trials):
            session = login(identifier=email, password="bench-passphrase-1", device=device, ip=None)
            headers = {"Authorization": f"Ticket {session.ticket}"}
            for server in servers:
                assert (
                    client.get(f"{server.url}/api/accounts/me", headers=headers).status_code == 200
                )
            logout(ticket=ticket_verify(token=session.ticket), user_id=session.user.pk)
            revoked_at = time.perf_counter()
            for server in servers:
                wait_ms(partial(refuses, client, server.url, headers))
                revocations.append((time.perf_counter() - revoked_at) * 1000)

            blocked = trial % 2 == 0
            campus_set_blocked(code="bx-a", blocked=blocked, actor=None, reason="bench")
            flipped_at = time.perf_counter()

            for server in servers:
                wait_ms(partial(shows, client, server.url, blocked))
                switches.append((time.perf_counter() - flipped_at) * 1000)
    finally:
        for server in servers:
            server.stop()
    emit(
        {
            "benchmark": "propagation",
            "trials": args.trials,
            "servers": len(servers),
            "poll_seconds": settings.SHARED_STATE_POLL_SECONDS,
            "ticket_revocation": describe(revocations),
            "campus_block": describe(switches),
        }
    )


if __name__ == "__main__":
    main()
