"""How long a live-control command takes to reach every access process (issue 15:
within 1 s), by each route of live control alone and by all three together.

    .venv/bin/python bench/shake_control.py [--processes 4] [--commands 20] [--server uvicorn]

Processes of the project (production settings, shake engine running) in groups:
`--processes` with every route (the production configuration), and one with the
Redis message alone and one with the database poll alone (the third route, a
client carrying the signed schedule, applies on the request that carries it, so
its delay is the client's own shake interval; it is not timed here). One round,
loaded everywhere, is then paused and resumed `--commands` times by the
operators' service (`shake.services.control`), a command every
`--gap` seconds; after each, every process is asked (shakes, `--pollers` at a
time, as fast as they are answered) until its answer carries the new control
version. The delay of a
process is the time from the command's return (after commit) to the first answer
that has it. Prints JSON (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from _cluster import _ticket, _user
from _setup import configure, emit


def _round() -> int:
    """An approved round due now whose countdown is far off: it waits for a command."""
    from django.utils import timezone

    from shake.services.activities import (
        PrizePlan,
        RoundPlan,
        SponsorPlan,
        activity_approve,
        activity_create,
    )

    activity = activity_create(
        name="Control bench",
        sponsors=[SponsorPlan("Bench", "https://example.com/bench.png")],
        rounds=[
            RoundPlan(
                title="Controlled",
                # Due now, waiting for the operator's start (its countdown far off).
                planned_start=timezone.now() - timedelta(seconds=1),
                latest_start=timezone.now() + timedelta(seconds=600),
                duration_seconds=3600,
                issue_rate=1,
                per_user_cap=10_000,
                per_sponsor_cap=10_000,
                prizes=(PrizePlan(sponsor=0, count=100, total=10_000),),
            )
        ],
    )
    activity_approve(activity_id=activity.pk)
    round_id: int = activity.rounds.get().pk
    return round_id


REQUESTS: list[float] = []  # seconds per shake request: the measurement's resolution


async def _version(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    began = time.monotonic()
    try:
        response = await http.post(f"{url}/api/shake", json={}, headers=headers)
    except httpx.HTTPError:
        return -1
    REQUESTS.append(time.monotonic() - began)
    if response.status_code != 200:
        return -1
    schedule = response.json().get("schedule") or {}
    return int(schedule.get("version") or 0)


async def _reached(
    urls: dict[str, str], headers: dict[str, str], version: int, timeout: float, pollers: int
) -> dict[str, float | None]:
    """Seconds until each process answers with `version` (None: not within timeout)."""
    began = time.monotonic()

    async def one(http: httpx.AsyncClient, url: str) -> float | None:
        while time.monotonic() - began < timeout:
            if await _version(http, url, headers) >= version:
                return time.monotonic() - began
        return None

    async def first(http: httpx.AsyncClient, url: str) -> float | None:
        # Several pollers per process, so that an answer starts soon after the change.
        found = await asyncio.gather(*(one(http, url) for _ in range(pollers)))
        got = [d for d in found if d is not None]
        return min(got) if got else None

    async with httpx.AsyncClient(timeout=5) as http:
        delays = await asyncio.gather(*(first(http, url) for url in urls.values()))
    return dict(zip(urls, delays, strict=True))


def _summary(delays: list[float | None], within: float) -> dict[str, Any]:
    got = sorted(d for d in delays if d is not None)
    if not got:
        return {"samples": len(delays), "missed": len(delays)}
    return {
        "samples": len(delays),
        "missed": len(delays) - len(got),
        "p50_ms": round(statistics.median(got) * 1000, 1),
        "p99_ms": round(got[min(len(got) - 1, int(len(got) * 0.99))] * 1000, 1),
        "max_ms": round(got[-1] * 1000, 1),
        f"within_{within:g}s": round(sum(d < within for d in got) / len(delays), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--gap", type=float, default=1.0)
    parser.add_argument("--poll-seconds", type=float, default=0.5)
    parser.add_argument("--pollers", type=int, default=3, help="concurrent askers per process")
    parser.add_argument("--server", default="uvicorn", choices=["daphne", "uvicorn"])
    args = parser.parse_args()
    registry = f"shake-bench-{uuid.uuid4().hex[:8]}"
    env = configure() | {
        "LOG_LEVEL": "WARNING",
        "MONITORING_GUARD_ENABLED": "false",
        "ADMISSION_ENABLED": "false",  # the bench's polling must not be shed
        "SHAKE_ENGINE_THREAD": "true",
        "SHAKE_REGISTRY": registry,
        "SHAKE_CONTROL_POLL_SECONDS": str(args.poll_seconds),
    }
    from django.test import override_settings

    from devtools.processes import collect_static, spawn_asgi_server, wait_until_healthy
    from shake.services import control

    log_dir = Path(tempfile.mkdtemp(prefix="bench-shake-control-"))
    collect_static(env)
    groups = {
        "all": ["pubsub,poll,client"] * args.processes,
        "pubsub": ["pubsub"],
        "poll": ["poll"],
    }
    servers = []
    urls: dict[str, str] = {}
    for group, routes in groups.items():
        for index, route in enumerate(routes):
            name = f"{group}-{index}"
            server = spawn_asgi_server(
                log_dir=log_dir,
                env=env | {"SHAKE_CONTROL_ROUTES": route},
                server=args.server,
                name=name,
            )
            servers.append(server)
            urls[name] = server.url
    headers = {"Authorization": f"Ticket {_ticket(_user('controller'))}"}
    results: dict[str, Any] = {}
    try:
        for server in servers:
            wait_until_healthy(server)
        with override_settings(SHAKE_REGISTRY=registry):
            round_id = _round()
            started = control.round_start(round_id=round_id, actor=None, reason="bench")
            loaded = asyncio.run(_reached(urls, headers, started.control_version, 60.0, 1))
            missing = [name for name, delay in loaded.items() if delay is None]
            if missing:
                raise SystemExit(f"the round never reached {missing}")
            per_process: dict[str, list[float | None]] = {name: [] for name in urls}
            for number in range(args.commands):
                time.sleep(args.gap)
                change = control.round_pause if number % 2 == 0 else control.round_resume
                changed = change(round_id=round_id, actor=None, reason="bench")
                reached = asyncio.run(
                    _reached(urls, headers, changed.control_version, 10.0, args.pollers)
                )
                for name, delay in reached.items():
                    per_process[name].append(delay)
            control.round_end(round_id=round_id, actor=None, reason="bench over")
        for group in groups:
            delays = [d for name, ds in per_process.items() if name.startswith(group) for d in ds]
            results[group] = _summary(delays, 1.0)
        # A command has reached "every process" when the slowest of the group has it.
        slowest = [
            max((per_process[f"all-{i}"][n] or float("inf")) for i in range(args.processes))
            for n in range(args.commands)
        ]
        results["all_slowest_per_command"] = _summary(
            [s if s != float("inf") else None for s in slowest], 1.0
        )
    finally:
        for server in servers:
            server.stop()
    emit(
        {
            "bench": "shake_control",
            "server": args.server,
            "processes": args.processes,
            "commands": args.commands,
            "poll_seconds": args.poll_seconds,
            "pollers": args.pollers,
            "delays": results,
            "shake_request_ms": {
                "count": len(REQUESTS),
                "p50": round(statistics.median(REQUESTS) * 1000, 1),
                "p99": round(sorted(REQUESTS)[int(len(REQUESTS) * 0.99)] * 1000, 1),
            },
        }
    )


if __name__ == "__main__":
    main()
