"""Authenticated API requests over real HTTP: daphne and uvicorn, side by side.

    .venv/bin/python bench/http_auth.py [--seconds 5] [--concurrency 16]

Starts one server process of each kind with the production settings on
PostgreSQL and Redis, then, for each, drives GET /api/health (no ticket, no
database) and GET /api/accounts/me (ticket check plus one row read) with
`--concurrency` keep-alive connections for `--seconds` (bench/_http.py, a
lean client, so the server is what is measured). Prints JSON: requests/s and
latency percentiles. The client still shares the machine's cores with the
server, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Any

from _http import load
from _setup import configure, emit


def drive(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, Any]:
    result = asyncio.run(load(url, headers=headers, seconds=seconds, connections=connections))
    return result.summary()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    env = configure()

    from accounts.models import Platform
    from accounts.services.login import login
    from accounts.services.registration import user_create
    from accounts.types import DeviceInfo
    from devtools.processes import start_asgi_server

    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    user_create(phone=None, email=email, password="bench-passphrase-1", nickname="Bench")
    device = DeviceInfo(platform=Platform.OTHER, client_version="1.0.0", name="bench")
    token = login(identifier=email, password="bench-passphrase-1", device=device, ip=None).ticket
    ticket_headers = {"Authorization": f"Ticket {token}"}

    results: dict[str, Any] = {}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    for server_kind in ("daphne", "uvicorn"):
        server = start_asgi_server(log_dir=log_dir, env=env, server=server_kind, name=server_kind)
        try:
            results[server_kind] = {
                "health": drive(f"{server.url}/api/health", {}, args.seconds, args.concurrency),
                "me_with_ticket": drive(
                    f"{server.url}/api/accounts/me", ticket_headers, args.seconds, args.concurrency
                ),
            }
        finally:
            server.stop()
    ratio = {
        endpoint: round(
            results["uvicorn"][endpoint]["requests_per_second"]
            / results["daphne"][endpoint]["requests_per_second"],
            2,
        )
        for endpoint in ("health", "me_with_ticket")
    }
    emit(
        {
            "benchmark": "http_auth",
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "processes_per_server": 1,
            **results,
            "uvicorn_to_daphne_throughput": ratio,
        }
    )


if __name__ == "__main__":
    main()
