"""Shakes per second on one access process against a bare ASGI hello-world served
by the same server software, in the same run (issue 15's target: at least 50 %).

    .venv/bin/python bench/shake_access.py [--seconds 10] [--clients 32] [--server daphne]

One ASGI process of the project (production settings, its shake engine running)
with an approved round issuing during the run (the usual answer is "nothing", as
in the seed: 1,400万 shakes/s against 5万 packets/s), and one process of
bench/_hello.py under the same server. The same client load (`--clients`
concurrent HTTP/1.1 keep-alive clients, each carrying its record) hits each for
`--seconds`. Prints JSON (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from _cluster import _ticket, _user
from _setup import ROOT, configure, emit


async def _load(url: str, headers: list[dict[str, str]], seconds: float) -> dict[str, Any]:
    answered = errors = packets = 0
    until = time.monotonic() + seconds

    async def client(header: dict[str, str]) -> None:
        nonlocal answered, errors, packets
        record = None
        async with httpx.AsyncClient(timeout=10) as http:
            while time.monotonic() < until:
                try:
                    response = await http.post(url, json={"record": record}, headers=header)
                except httpx.HTTPError:
                    errors += 1
                    continue
                if response.status_code != 200:
                    errors += 1
                    continue
                answered += 1
                body = response.json()
                record = body.get("record")
                packets += body.get("packet") is not None

    started = time.monotonic()
    await asyncio.gather(*(client(header) for header in headers))
    elapsed = time.monotonic() - started
    return {
        "answered": answered,
        "errors": errors,
        "packets": packets,
        "per_second": round(answered / elapsed, 1),
    }


def _round(seconds: float) -> int:
    from django.utils import timezone

    from shake.services.activities import (
        PrizePlan,
        RoundPlan,
        SponsorPlan,
        activity_approve,
        activity_create,
    )

    activity = activity_create(
        name="Bench gala",
        sponsors=[SponsorPlan("Bench", "https://example.com/bench.png")],
        rounds=[
            RoundPlan(
                title="Bench round",
                planned_start=timezone.now() - timedelta(seconds=1),
                duration_seconds=int(seconds * 4) + 120,
                issue_rate=50,
                prizes=(PrizePlan(sponsor=0, count=20_000, total=2_000_000),),
            )
        ],
    )
    activity_approve(activity_id=activity.pk)
    return int(activity.pk)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--server", default="daphne", choices=["daphne", "uvicorn"])
    args = parser.parse_args()
    env = configure() | {"LOG_LEVEL": "WARNING", "MONITORING_GUARD_ENABLED": "false"}

    from devtools.processes import (
        collect_static,
        free_port,
        spawn,
        start_asgi_server,
    )

    log_dir = Path(tempfile.mkdtemp(prefix="bench-shake-"))
    collect_static(env)
    _round(args.seconds)
    headers = [{"Authorization": f"Ticket {_ticket(_user('shaker'))}"} for _ in range(args.clients)]
    results: dict[str, Any] = {}
    server = start_asgi_server(log_dir=log_dir, env=env, server=args.server, name="shake")
    try:
        time.sleep(2)  # the engine claims its slot and reserves (not measured)
        results["shake"] = asyncio.run(_load(f"{server.url}/api/shake", headers, args.seconds))
    finally:
        server.stop()
    port = free_port()
    if args.server == "daphne":
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "_hello:app"]
    else:
        argv = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "_hello:app"]  # fmt: skip
    hello = spawn(
        argv, env=env | {"PYTHONPATH": str(ROOT / "bench")}, log_path=log_dir / "hello.log"
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        results["hello"] = asyncio.run(_load(f"http://127.0.0.1:{port}/", headers, args.seconds))
    finally:
        hello.terminate()
        hello.wait(timeout=10)
    emit(
        {
            "bench": "shake",
            "server": args.server,
            "seconds": args.seconds,
            "clients": args.clients,
            **results,
            "ratio": round(results["shake"]["per_second"] / results["hello"]["per_second"], 3),
        }
    )


if __name__ == "__main__":
    main()
