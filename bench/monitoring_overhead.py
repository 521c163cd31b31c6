"""Monitoring's own cost and freshness.

    .venv/bin/python bench/monitoring_overhead.py [--seconds 2] [--trials 15]
        [--server uvicorn|daphne] [--freshness-trials 8] [--hook-calls 5000] [--calibrate]

Overhead: two server processes with the production settings, one with
MONITORING_ENABLED=true (every hook, the history flusher, the traffic guard
fingerprinting every answer of a guarded route but set never to trip) and one
with it false. On a
shared two-core VM one run's noise is larger than what is measured, so the
comparison is made of many short paired trials: in each trial every case runs
on both servers back to back, in alternating order (on/off, then off/on), and
the trial yields the ratio on ÷ off. What is reported per case is the median
of those paired ratios with their 10th and 90th percentiles, for

- `p50_ms`: the median request time over one keep-alive connection (no
  queueing), and the throughput over 16 connections;
- `cpu_us_per_request`: the server process's CPU time (utime + stime from
  /proc/<pid>/stat, every thread, the flusher's included) divided by the
  requests it answered. It does not count the time a request waits for a core,
  so it is the steadier of the two, yet on a shared VM still moves by several
  percent between two identical processes (see --calibrate).

Cases: GET /api/health (no ticket, no database) and GET /api/accounts/me
(ticket + one row).

Hooks: the HTTP hook alone (MonitoringMiddleware around a view that answers at
once with the real view's answer), timed in this process with it on and off,
best of five: what monitoring adds to each request, free of the noise of two
servers on shared cores. `--calibrate` starts both servers with monitoring off,
so what the paired comparison reports is then the machine's noise floor.

Freshness: against the monitored server, send one request to a route nobody
else calls and poll the dashboard's data endpoint (what the page fetches every
MONITORING_DASHBOARD_REFRESH_SECONDS) until the module table shows it; the page
itself adds up to one refresh interval. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
import timeit
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from _http import load
from _setup import configure, emit

TICK = os.sysconf("SC_CLK_TCK")
CONNECTIONS = {"sequential": 1, "concurrent16": 16}


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, every thread (living or ended) included, from /proc.
    The servers run as one process each (uvicorn with one worker, daphne)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def drive(
    url: str, headers: dict[str, str], seconds: float, connections: int, pid: int
) -> dict[str, float]:
    before = cpu_seconds(pid)
    summary = asyncio.run(
        load(url, headers=headers, seconds=seconds, connections=connections)
    ).summary()
    used = cpu_seconds(pid) - before
    return {
        "p50_ms": float(summary["p50_ms"]),
        "requests_per_second": float(summary["requests_per_second"]),
        "cpu_us_per_request": used / max(1, int(summary["requests"])) * 1e6,
        "errors": float(summary["errors"]),
    }


def spread(ratios: list[float]) -> dict[str, float]:
    """Median and 10th/90th percentiles of paired on/off ratios, as percent overhead."""
    deciles = statistics.quantiles(ratios, n=10) if len(ratios) > 1 else ratios * 9
    return {
        "median_percent": round((statistics.median(ratios) - 1) * 100, 1),
        "p10_percent": round((deciles[0] - 1) * 100, 1),
        "p90_percent": round((deciles[-1] - 1) * 100, 1),
    }


def compare(runs: dict[str, list[dict[str, float]]], concurrent: bool) -> dict[str, Any]:
    """One case: medians of each side, and the paired ratios' spread."""
    on, off = runs["on"], runs["off"]
    speed = "requests_per_second" if concurrent else "p50_ms"
    # For throughput a loss is the overhead: off ÷ on, so that >0 % always means "costs".
    ratios = [
        (b[speed] / a[speed]) if concurrent else (a[speed] / b[speed])
        for a, b in zip(on, off, strict=True)
    ]
    cpu = [a["cpu_us_per_request"] / b["cpu_us_per_request"] for a, b in zip(on, off, strict=True)]
    return {
        mode: {
            key: round(statistics.median(r[key] for r in side), 3)
            for key in ("p50_ms", "requests_per_second", "cpu_us_per_request")
        }
        | {"errors": sum(r["errors"] for r in side)}
        for mode, side in (("on", on), ("off", off))
    } | {
        "trials": len(ratios),
        ("throughput_overhead" if concurrent else "p50_overhead"): spread(ratios),
        "cpu_per_request_overhead": spread(cpu),
    }


def overhead(
    servers: dict[str, Any], cases: dict[str, tuple[str, dict[str, str]]], args: Any
) -> dict[str, Any]:
    for server in servers.values():  # warm up: imports, pools, the ticket cache
        for path, headers in cases.values():
            drive(server.url + path, headers, 0.5, 4, server.process.pid)
    raw: dict[str, dict[str, list[dict[str, float]]]] = {}
    for trial in range(args.trials):
        order = ("on", "off") if trial % 2 == 0 else ("off", "on")
        for name, (path, headers) in cases.items():
            for label, connections in CONNECTIONS.items():
                runs = raw.setdefault(f"{name}/{label}", {"on": [], "off": []})
                for mode in order:
                    server = servers[mode]
                    runs[mode].append(
                        drive(
                            server.url + path,
                            headers,
                            args.seconds,
                            connections,
                            server.process.pid,
                        )
                    )
    return {
        key: compare(runs, concurrent=key.endswith("concurrent16")) for key, runs in raw.items()
    }


def hooks_cost(cases: dict[str, tuple[str, dict[str, str]]], calls: int) -> dict[str, Any]:
    """µs per request that the HTTP hook itself adds (MonitoringMiddleware: route,
    labels, counter and histogram, the guard's block check, fingerprint and
    count), timed around a view that answers at once with the real view's
    answer; best of five runs, on minus off. No server and no other process in
    the measured span, so this is the steady figure."""
    from django.conf import settings
    from django.test import Client, RequestFactory
    from django.urls import resolve

    from accounts.tickets import ticket_verify
    from monitoring.instrument.http import MonitoringMiddleware

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 10**9  # count, never trip (as the servers)
    enabled = settings.MONITORING_ENABLED
    out: dict[str, Any] = {}
    for name, (path, headers) in cases.items():
        answer = Client().get(path, headers=headers)
        assert answer.status_code == 200, answer.status_code
        request = RequestFactory().get(path, headers=headers)
        request.resolver_match = resolve(path)
        token = headers.get("Authorization", "").removeprefix("Ticket ")
        if token:
            request.auth = ticket_verify(token=token)  # type: ignore[attr-defined]
        hook = MonitoringMiddleware(partial(_answered, answer))
        best = {}
        for mode in (True, False):
            settings.MONITORING_ENABLED = mode
            runs = timeit.repeat(partial(hook, request), number=calls, repeat=5)
            best[mode] = min(runs) / calls * 1e6
        out[name] = {
            "hook_on_us": round(best[True], 1),
            "hook_off_us": round(best[False], 1),
            "hooks_us_per_request": round(best[True] - best[False], 1),
        }
    settings.MONITORING_ENABLED = enabled
    out["flush_ms"] = round(_flush_cost() * 1000, 2)
    return out


def _answered(answer: Any, _request: Any) -> Any:
    return answer


def _flush_cost() -> float:
    """Seconds one history flush of this process takes (snapshot, deltas, upsert):
    each server process does it every MONITORING_FLUSH_SECONDS in its own thread."""
    from django.utils import timezone

    from monitoring.services.history import DeltaTracker, history_write
    from wechat_core import metrics

    costs = []
    for _ in range(5):
        started = time.perf_counter()
        values = metrics.snapshot()
        history_write(
            deltas=DeltaTracker().deltas(values), ended=timezone.now(), instance="bench:0"
        )
        costs.append(time.perf_counter() - started)
    return min(costs)


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
    """Seconds from one GET /api/health until the dashboard's data counts it, and what
    one fetch of the overview's data costs."""
    samples, fetches = [], []
    for _ in range(trials):
        before = _health_count(http)
        started = time.perf_counter()
        httpx.get(f"{base}/api/health")
        while time.perf_counter() - started < 60:
            fetched = time.perf_counter()
            seen = _health_count(http)
            fetches.append(time.perf_counter() - fetched)
            if seen >= before + 0.5:
                break
            time.sleep(0.05)
        samples.append(time.perf_counter() - started)
        time.sleep(0.7)
    samples.sort()
    return {
        "trials": trials,
        "p50_s": round(statistics.median(samples), 2),
        "max_s": round(samples[-1], 2),
        "samples_s": [round(s, 2) for s in samples],
        "overview_data_fetch_p50_ms": round(statistics.median(fetches) * 1000, 1),
    }


def operator_session() -> tuple[str, str, str]:
    """A new operator (to read the dashboards) and a ticket of theirs."""
    from accounts.models import Platform
    from accounts.services.login import login
    from accounts.services.operators import operator_grant
    from accounts.services.registration import user_create
    from accounts.types import DeviceInfo

    password = "bench-passphrase-1"
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    user = user_create(phone=None, email=email, password=password, nickname="Bench")
    operator_grant(user=user)
    device = DeviceInfo(platform=Platform.OTHER, client_version="3.0.0", name="bench")
    return (
        email,
        password,
        login(identifier=email, password=password, device=device, ip=None).ticket,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one run")
    parser.add_argument("--trials", type=int, default=15, help="paired on/off trials per case")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--freshness-trials", type=int, default=8)
    parser.add_argument("--hook-calls", type=int, default=5000)
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="both servers with monitoring off: the 'overhead' is then the noise floor",
    )
    args = parser.parse_args()
    env = configure()
    from devtools.processes import collect_static, start_asgi_server

    email, password, token = operator_session()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    base_env = {
        **env,
        "LOG_LEVEL": "WARNING",
        "MONITORING_GUARD_REPEATS_PER_MINUTE": "1000000000",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-prom-"),
    }
    collect_static(base_env)
    servers = {
        mode: start_asgi_server(
            log_dir=log_dir,
            env={**base_env, "MONITORING_ENABLED": enabled},
            name=mode,
            server=args.server,
        )
        for mode, enabled in (("on", "false" if args.calibrate else "true"), ("off", "false"))
    }
    cases = {
        "health": ("/api/health", {}),
        "me_with_ticket": ("/api/accounts/me", {"Authorization": f"Ticket {token}"}),
    }
    load_before = list(os.getloadavg())
    try:
        started = time.monotonic()
        results = overhead(servers, cases, args)
        minutes = round((time.monotonic() - started) / 60, 1)
        http = staff_client(servers["on"].url, email, password)
        fresh = freshness(servers["on"].url, http, args.freshness_trials)
        hooks = hooks_cost(cases, args.hook_calls)
    finally:
        for server in servers.values():
            server.stop()
    emit(
        {
            "server": args.server,
            "calibration": args.calibrate,
            "run_seconds": args.seconds,
            "overhead_minutes": minutes,
            "load_average_before_after": [load_before, list(os.getloadavg())],
            "overhead": results,
            "hooks": hooks,
            "freshness": fresh,
        }
    )


if __name__ == "__main__":
    main()
