"""Block one of three campuses while clients chat at a steady rate (issue 13).

    .venv/bin/python bench/campus_block.py [--clients 200] [--interval 10] \
        [--baseline-seconds 20] [--block-seconds 30]

Three ASGI processes labelled sh-a (daphne), sh-b (uvicorn) and sh-c (daphne)
and a Celery worker, on the benchmark database; `--clients` Python clients
(messaging.client) in pairs, half of them starting on sh-b, each sender sending
one message every `--interval` seconds. After `--baseline-seconds`, sh-b is
blocked with the audited switch for `--block-seconds` (the DR drill's workload,
drills/services.py, without its abort). Prints JSON: messages sent,
lost (acknowledged, never received) and failed before and during the block,
the error rate delta, how many links were moved, and the distribution of the
time from the block to each moved client being connected again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from _setup import configure, emit

CAMPUSES = (("sh-a", "daphne"), ("sh-b", "uvicorn"), ("sh-c", "daphne"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--block-seconds", type=float, default=30.0)
    parser.add_argument("--send-timeout", type=float, default=10.0)
    args = parser.parse_args()
    env = configure()
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers

    # Nothing here checks the synthetic users' passwords; argon2 would make
    # creating two hundred of them take minutes on a shared machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()  # type: ignore[attr-defined]
    settings.FRIEND_REQUESTS_PER_DAY = 1_000_000

    from devtools.processes import collect_static, start_asgi_server, start_celery_worker
    from drills.services import DrillPlan, drill_exercise, drill_pairs
    from tests.support.chat import ws_url
    from wechat_core.models import Campus, DataCenter
    from wechat_core.services import campus_set_blocked

    server_env = {
        **env,
        "LOG_LEVEL": "WARNING",
        "MESSAGING_SENDS_PER_MINUTE": "10000000",
        "MONITORING_GUARD_ENABLED": "false",  # every client comes from 127.0.0.1
        "CAMPUS_WATCH_SECONDS": "0.2",
        "CAMPUS_MOVE_SPREAD_SECONDS": "1.0",
    }
    log_dir = Path(tempfile.mkdtemp(prefix="bench-campus-"))
    collect_static(server_env)
    processes: list[Any] = []
    try:
        servers = {}
        for code, kind in CAMPUSES:
            servers[code] = start_asgi_server(
                log_dir=log_dir, env=server_env | {"DATACENTER": "sh", "CAMPUS": code},
                server=kind, name=f"campus-{code}",
            )  # fmt: skip
            processes.append(servers[code])
        processes.append(
            start_celery_worker(
                log_dir=log_dir, env=server_env, queues="delivery,default", name="campus-bench"
            )
        )
        datacenter, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
        for code, server in servers.items():
            Campus.objects.update_or_create(
                code=code,
                defaults={"datacenter": datacenter, "name": code.upper(),
                          "endpoints": ws_url(server), "blocked": False},
            )  # fmt: skip
        campus_set_blocked(code="sh-a", blocked=False, actor=None, reason="bench: publish")
        pairs = drill_pairs(args.clients // 2)
        plan = DrillPlan(
            campus="sh-b",
            block_seconds=args.block_seconds,
            baseline_seconds=args.baseline_seconds,
            interval=args.interval,
            send_timeout=args.send_timeout,
            max_delta=1.0,  # never abort: the bench measures the whole block
            min_failures=10**9,
        )
        endpoints = {code: [ws_url(server)] for code, server in servers.items()}
        load_before = os.getloadavg()[0]
        try:
            result = asyncio.run(drill_exercise(0, plan, pairs, endpoints))
        finally:
            campus_set_blocked(code="sh-b", blocked=False, actor=None, reason="bench: end")
    finally:
        for process in processes:
            process.stop()

    reconnects = result.reconnects
    quantiles = statistics.quantiles(reconnects, n=100) if len(reconnects) > 1 else reconnects * 99
    before, during = result.before, result.during
    emit({
        "benchmark": "campus_block",
        "clients": 2 * len(pairs),
        "messages_per_second": round(len(pairs) / args.interval, 1),
        "baseline_seconds": args.baseline_seconds,
        "block_seconds": args.block_seconds,
        "load_average_1m": round(load_before, 2),
        "before": {"sent": before.sent, "failed": before.failed, "lost": before.lost,
                   "error_rate": round(before.rate, 4)},
        "during": {"sent": during.sent, "failed": during.failed, "lost": during.lost,
                   "error_rate": round(during.rate, 4)},
        "error_rate_delta": round(during.rate - before.rate, 4),
        "links_on_blocked_campus": result.on_campus,
        "links_moved": result.moved,
        "reconnect_seconds": {
            "p50": round(quantiles[49], 2) if reconnects else None,
            "p99": round(quantiles[98], 2) if reconnects else None,
            "max": round(max(reconnects), 2) if reconnects else None,
        },
        "all_reconnected_within_5s": bool(reconnects)
        and result.moved == result.on_campus
        and max(reconnects) <= 5.0,
    })  # fmt: skip


if __name__ == "__main__":
    main()
