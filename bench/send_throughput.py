"""Send throughput: 1:1 with 1 and with 32 concurrent senders, and into a 100-member
group; our server under daphne and uvicorn, and Synapse under the same workload.

    .venv/bin/python bench/send_throughput.py [--seconds 5] [--servers daphne,uvicorn] [--synapse]
        [--variants 'name:KEY=VALUE,KEY=VALUE;name:...'] [--rounds N]

With --variants, each server runs once per variant (its environment overrides:
MESSAGING_GROUP_COMMIT=false, WEB_CONCURRENCY=2...) per round, the variants
alternating, so that they are compared side by side on a machine whose speed
drifts.

Each sender sends text messages one after another, waiting for each ack, for
`--seconds`. Prints JSON: messages/s and ack latency percentiles per scenario;
for the group, also how long the fan-out to all members took to finish; and,
for our server, the CPU milliseconds each message cost the ASGI server,
PostgreSQL, Redis, the Celery worker and the load generator (bench/_cpu.py):
on a shared two-core machine their sum is what bounds the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from _cluster import Cluster, make_group, make_pairs, parse_variants
from _cpu import CpuMeter
from _setup import emit
from _ws import open_link, percentiles, send_text


async def _senders(
    url: str, jobs: list[tuple[str, int]], seconds: float, server_pid: int | None = None
) -> dict[str, Any]:
    links = [await open_link(url, ticket) for ticket, _ in jobs]
    meter = CpuMeter(server_pid=server_pid or -1)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def run(link: Any, conversation: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            latencies.append(await send_text(link, conversation, f"message {n}"))
            n += 1

    started = time.perf_counter()
    with meter:
        await asyncio.gather(
            *(run(link, conv) for (link, _), (_, conv) in zip(links, jobs, strict=True))
        )
    elapsed = time.perf_counter() - started
    for link, _ in links:
        await link.close()
    rate = round(len(latencies) / elapsed, 1)
    result: dict[str, Any] = {
        "messages": len(latencies),
        "messages_per_second": rate,
        **percentiles(latencies),
    }
    if server_pid is not None:
        result["cpu_ms_per_message"] = meter.per_event_ms(len(latencies))
    return result


def _wait_delivered(group: int, timeout: float = 300) -> float:
    from messaging.models import Conversation, DeliveryCursor

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        last = Conversation.objects.values_list("last_seq", flat=True).get(pk=group)
        if DeliveryCursor.objects.values_list("delivered_seq", flat=True).get(pk=group) >= last:
            return time.perf_counter() - started
        time.sleep(0.05)
    return float("inf")


def ours(
    server: str,
    seconds: float,
    pairs: list[Any],
    group: tuple[int, list[Any]],
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    group_id, members = group
    with Cluster(server, **(env or {})) as cluster:
        pid = cluster.pid
        one = asyncio.run(
            _senders(cluster.ws_url, [(pairs[0][0].ticket, pairs[0][2])], seconds, pid)
        )
        many = asyncio.run(
            _senders(cluster.ws_url, [(s.ticket, conv) for s, _, conv in pairs[:32]], seconds, pid)
        )
        grouped = asyncio.run(
            _senders(cluster.ws_url, [(members[0].ticket, group_id)], seconds, pid)
        )
        grouped["fan_out_finished_after_s"] = round(_wait_delivered(group_id), 2)
        grouped["entries_written_per_second"] = round(
            grouped["messages"] * len(members) / (seconds + grouped["fan_out_finished_after_s"]), 1
        )
    return {"one_sender": one, "32_senders": many, "group_100": grouped}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument("--synapse", action="store_true")
    parser.add_argument("--variants", default="")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    from _setup import configure

    configure()
    pairs = make_pairs(32)
    group = make_group(100)
    results: dict[str, Any] = {}
    variants = parse_variants(args.variants)
    for round_ in range(args.rounds):
        for server in args.servers.split(","):
            for name, env in variants.items():
                label = server if not args.variants else f"{server} {name}"
                if args.rounds > 1:
                    label += f" round {round_ + 1}"
                results[label] = ours(server, args.seconds, pairs, group, env)
                results[label]["load_average"] = os.getloadavg()
    if args.synapse:
        from _synapse_workloads import synapse_send_throughput

        results["synapse"] = asyncio.run(synapse_send_throughput(args.seconds))
    emit({"benchmark": "send_throughput", "seconds": args.seconds, **results})


if __name__ == "__main__":
    main()
