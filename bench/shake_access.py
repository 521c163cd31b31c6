"""Shakes per second on one access process against a bare ASGI hello-world served
by the same server software, in the same run (issue 15's target: at least 50 %).

    .venv/bin/python bench/shake_access.py [--seconds 10] [--clients 32] [--server daphne]

One ASGI process of the project (production settings, its shake engine running)
with an approved round issuing during the run (the usual answer is "nothing", as
in the seed: 1,400万 shakes/s against 5万 packets/s), measured twice: answered by
Django (SHAKE_FAST_PATH off) and by the fast path before it (on, the default;
shake/fastpath.py), each a process of its own; then one process of
bench/_hello.py under the same server. The same client load (`--clients`
concurrent HTTP/1.1 keep-alive clients, each carrying its record) hits each for
`--seconds`. `--only fast` or `--only django` skips the other. Prints JSON
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from _cluster import _ticket, _user
from _setup import ROOT, configure, emit


async def _load(url: str, headers: list[dict[str, str]], seconds: float) -> dict[str, Any]:
    answered = errors = packets = 0
    statuses: Counter[str] = Counter()
    until = time.monotonic() + seconds

    async def client(header: dict[str, str]) -> None:
        nonlocal answered, errors, packets
        record = None
        async with httpx.AsyncClient(timeout=10) as http:
            while time.monotonic() < until:
                try:
                    response = await http.post(url, json={"record": record}, headers=header)
                except httpx.HTTPError as error:
                    errors += 1
                    statuses[type(error).__name__] += 1
                    continue
                if response.status_code != 200:
                    errors += 1
                    statuses[str(response.status_code)] += 1
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
        **({"error_kinds": dict(statuses)} if statuses else {}),
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
    parser.add_argument("--only", choices=["fast", "django"], default=None)
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
    results: dict[str, Any] = {}
    paths = {"django": "false", "fast": "true"}
    for name, switch in paths.items():
        if args.only not in (None, name):
            continue
        # Users of their own: the caps of the round count every user's wins so far.
        headers = [
            {"Authorization": f"Ticket {_ticket(_user('shaker'))}"} for _ in range(args.clients)
        ]
        server = start_asgi_server(
            log_dir=log_dir,
            env=env | {"SHAKE_FAST_PATH": switch},
            server=args.server,
            name=f"shake-{name}",
        )
        try:
            time.sleep(2)  # the engine claims its slot and reserves (not measured)
            url = f"{server.url}/api/shake"
            # Each client's first shakes go to Django (its ticket verified and cached,
            # the fast path's headers learnt), as after any process start (not measured).
            asyncio.run(_load(url, headers, 1.0))
            results[f"shake_{name}"] = asyncio.run(_load(url, headers, args.seconds))
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
            **{
                f"ratio_{name}": round(
                    results[f"shake_{name}"]["per_second"] / results["hello"]["per_second"], 3
                )
                for name in paths
                if f"shake_{name}" in results
            },
            "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        }
    )


if __name__ == "__main__":
    main()
