"""Idle websockets one ASGI process holds, and the memory each costs.

    .venv/bin/python bench/idle_connections.py [--connections 10000] [--servers daphne,uvicorn]
                                               [--uvicorn-protocols wsproto,websockets-sansio]
                                               [--synapse --synapse-connections 2000]

Opens `--connections` authenticated SYNC websockets to one server process, each
for a different user (so the process listens to as many realtime groups), waits
until every one has its `hello`, checks that a sample still answers heartbeats,
and reads the server's resident memory before and after. Synapse: as many users
each hold an idle long-poll /sync. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from typing import Any

from _cluster import Cluster, make_idle_tickets
from _setup import configure, emit
from _ws import open_link, request
from websockets.exceptions import ConnectionClosed


def _rss_one(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    """The server's resident memory, its worker processes' included (granian
    serves from a child of the process it starts as)."""
    total = _rss_one(pid)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                total += _rss_one(int(name))
        except OSError:
            continue
    return total


async def hold(url: str, tickets: list[str], pid: int) -> dict[str, Any]:
    warm = [await open_link(url, ticket) for ticket in tickets[:WARM]]  # imports, pools, caches
    await asyncio.sleep(2)
    before = rss_kib(pid)
    semaphore = asyncio.Semaphore(200)
    links: list[Any] = []
    failures = 0

    async def one(ticket: str) -> None:
        nonlocal failures
        async with semaphore:
            try:
                links.append(await open_link(url, ticket))
            except Exception:
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(ticket) for ticket in tickets[WARM:]))
    opened_in = time.perf_counter() - started
    await asyncio.sleep(5)
    after = rss_kib(pid)
    sample = links[:: max(1, len(links) // 50)]
    answered = 0
    for link, _ in sample:
        try:
            reply = await request(link, {"type": "heartbeat"})
        except ConnectionClosed:  # counted as not answered
            continue
        answered += reply.get("type") == "heartbeat.ack"
    for link, _ in links + warm:
        await link.close()
    return {
        "connections": len(links),
        "failed": failures,
        "opened_in_seconds": round(opened_in, 1),
        "heartbeats_answered": f"{answered}/{len(sample)}",
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / max(1, len(links)), 1),
    }


WARM = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument(
        "--uvicorn-protocols",
        default="wsproto",
        help="uvicorn websocket implementations to compare, e.g. wsproto,websockets-sansio",
    )
    parser.add_argument("--synapse", action="store_true")
    parser.add_argument("--synapse-connections", type=int, default=2000)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers inherit it
    configure()
    tickets = make_idle_tickets(args.connections + WARM)
    results: dict[str, Any] = {"fd_limit": hard}
    runs = [
        (server, protocol)
        for server in args.servers.split(",")
        for protocol in (args.uvicorn_protocols.split(",") if server == "uvicorn" else [""])
    ]
    for server, protocol in runs:
        options = {"UVICORN_WEBSOCKET_PROTOCOL": protocol} if protocol else {}
        # Admission control off: this measures memory, and on a machine busy with
        # other work FastReject closed idle links as overloaded (4013) mid-run.
        env = {"MESSAGING_HEARTBEAT_SECONDS": "120", "ADMISSION_ENABLED": "false", **options}
        with Cluster(server, **env) as cluster:
            name = f"{server}-{protocol}" if protocol else server
            results[name] = asyncio.run(hold(cluster.ws_url, tickets, cluster.pid))
    if args.synapse:
        from _synapse_workloads import synapse_idle_connections

        results["synapse"] = asyncio.run(synapse_idle_connections(args.synapse_connections))
    emit({"benchmark": "idle_connections", **results})


if __name__ == "__main__":
    main()
