"""Monitoring's own cost and freshness.

    .venv/bin/python bench/monitoring_overhead.py [--seconds 5] [--rounds 3] [--trials 10]

Overhead: two daphne processes with the production settings, one with
MONITORING_ENABLED=true (every hook, the history flusher, the traffic guard
counting but never tripping) and one with it false, driven alternately in one
run (`--rounds` times each, so drift hits both) over one keep-alive connection
(per-request time, no queueing) and over 16 (throughput), on GET /api/health
(no ticket, no database) and GET /api/accounts/me (ticket + one row).

Freshness: against the monitored server, send one request to a route nobody
else calls and poll the dashboard's data endpoint (what the page fetches every
MONITORING_DASHBOARD_REFRESH_SECONDS) until the module table shows it; the page
itself adds up to one refresh interval. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _http import load
from _setup import configure, emit


def drive(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, Any]:
    return asyncio.run(
        load(url, headers=headers, seconds=seconds, connections=connections)
    ).summary()


def staff_client(base: str, email: str, password: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=10)
    page = http.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    http.post(
        "/admin/login/",
        data={"username": email, "password": password, "csrfmiddlewaretoken": token},
    )
    return http


def _health_count(http: httpx.Client) -> float:
    """Requests the overview shows for the module that serves /api/health (last 5 min)."""
    data = http.get("/monitoring/data", params={"page": "overview", "range": "15m"}).json()
    rows = [row for row in data["modules"] if row["name"] == "wechat_core"]
    return (rows[0]["rate"] or 0.0) * 300 if rows else 0.0


def freshness(base: str, http: httpx.Client, trials: int) -> dict[str, Any]:
    """Seconds from one GET /api/health until the dashboard's data counts it."""
    samples = []
    for _ in range(trials):
        before = _health_count(http)
        started = time.perf_counter()
        httpx.get(f"{base}/api/health")
        while time.perf_counter() - started < 60 and _health_count(http) < before + 0.5:
            time.sleep(0.05)
        samples.append(time.perf_counter() - started)
        time.sleep(0.7)
    samples.sort()
    return {
        "trials": trials,
        "p50_s": round(statistics.median(samples), 2),
        "max_s": round(samples[-1], 2),
        "samples_s": [round(s, 2) for s in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    env = configure()
    from accounts.models import Platform
    from accounts.services.login import login
    from accounts.services.operators import operator_grant
    from accounts.services.registration import user_create
    from accounts.types import DeviceInfo
    from tests.support.processes import collect_static, start_asgi_server

    password = "bench-passphrase-1"
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    user = user_create(phone=None, email=email, password=password, nickname="Bench")
    operator_grant(user=user)
    device = DeviceInfo(platform=Platform.OTHER, client_version="3.0.0", name="bench")
    token = login(identifier=email, password=password, device=device, ip=None).ticket
    ticket = {"Authorization": f"Ticket {token}"}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    base_env = {
        **env,
        "LOG_LEVEL": "WARNING",
        "MONITORING_GUARD_REPEATS_PER_MINUTE": "1000000000",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-prom-"),
    }
    collect_static(base_env)
    servers = {
        "on": start_asgi_server(
            log_dir=log_dir, env={**base_env, "MONITORING_ENABLED": "true"}, name="on"
        ),
        "off": start_asgi_server(
            log_dir=log_dir, env={**base_env, "MONITORING_ENABLED": "false"}, name="off"
        ),
    }
    results: dict[str, Any] = {}
    try:
        cases = {"health": ("/api/health", {}), "me_with_ticket": ("/api/accounts/me", ticket)}
        raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for _ in range(args.rounds):
            for name, (path, headers) in cases.items():
                for mode, server in servers.items():
                    for label, connections in (("sequential", 1), ("concurrent16", 16)):
                        summary = drive(server.url + path, headers, args.seconds, connections)
                        raw.setdefault(f"{name}/{label}", {}).setdefault(mode, []).append(summary)
        for key, modes in raw.items():
            row: dict[str, Any] = {}
            for mode, runs in modes.items():
                row[mode] = {
                    "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 3),
                    "requests_per_second": round(
                        statistics.median(r["requests_per_second"] for r in runs), 1
                    ),
                }
            row["p50_overhead_percent"] = round(
                (row["on"]["p50_ms"] / row["off"]["p50_ms"] - 1) * 100, 1
            )
            row["throughput_loss_percent"] = round(
                (1 - row["on"]["requests_per_second"] / row["off"]["requests_per_second"]) * 100, 1
            )
            results[key] = row
        http = staff_client(servers["on"].url, email, password)
        results["freshness"] = freshness(servers["on"].url, http, args.trials)
    finally:
        for server in servers.values():
            server.stop()
    emit(
        {
            "overhead": {k: v for k, v in results.items() if k != "freshness"},
            "freshness": results["freshness"],
        }
    )


if __name__ == "__main__":
    main()
