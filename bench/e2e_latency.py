"""End-to-end latency: send -> the recipient's websocket notify -> synced, at a
given message rate; our server under daphne and uvicorn, and Synapse.

    .venv/bin/python bench/e2e_latency.py [--rates 10,200] [--seconds 10] [--synapse]
        [--servers daphne,uvicorn] [--variants 'name:KEY=VALUE,...;name:...'] [--rounds N]

Senders (one per pair) share the rate; each receiver, on every notify, syncs
from its key. A message carries its send time, so latency is measured from the
moment the send frame leaves until the sync that returns it is read. Synapse
gets the same load through PUT /send and long-poll /sync. Prints JSON: p50,
p95, p99 per rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from _cluster import Cluster, make_pairs, parse_variants
from _cpu import CpuMeter
from _setup import configure, emit
from _ws import open_link, percentiles, request

PAIRS = 20


async def measure(
    url: str, pairs: list[Any], rate: float, seconds: float, server_pid: int | None = None
) -> dict[str, Any]:
    latencies: list[float] = []
    # Where the time goes, per message: the sender's ack, the receiver's notify
    # (the first one covering the message's seq) and its sync (notify -> page read).
    acks: list[float] = []
    notifies: list[float] = []
    syncs: list[float] = []
    senders = [await open_link(url, s.ticket) for s, _, _ in pairs]
    receivers = [await open_link(url, r.ticket) for _, r, _ in pairs]
    stop = asyncio.Event()

    async def receive(link: Any, hello: dict[str, Any]) -> None:
        # As docs/protocol.md asks of a client: a notify that arrives while a sync
        # is in flight is remembered, and the client syncs again when the page
        # ends below it (dropping it would leave that message waiting for the
        # next notify, a tail of the bench's own making).
        key = hello["max_seq"]
        notified = key
        notify_times: list[tuple[int, int]] = []  # (seq, arrival), seqs increasing

        def noted(frame: dict[str, Any]) -> None:
            nonlocal notified
            if frame["seq"] > notified:
                notified = frame["seq"]
                notify_times.append((frame["seq"], time.perf_counter_ns()))

        while not stop.is_set():
            frame = json.loads(await link.recv())
            if frame.get("type") != "notify" or frame["seq"] <= key:
                continue
            noted(frame)
            while True:
                await link.send(json.dumps({"type": "sync", "id": "s", "key": key, "limit": 500}))
                while (page := json.loads(await link.recv())).get("type") != "sync.result":
                    if page.get("type") == "notify":
                        noted(page)
                now = time.perf_counter_ns()
                for entry in page["entries"]:
                    text = (entry.get("message") or {}).get("body", {}).get("text", "")
                    if text.endswith(" x"):
                        sent = int(text.split(" ", 1)[0])
                        latencies.append((now - sent) / 1e9)
                        notice = next((at for seq, at in notify_times if seq >= entry["seq"]), now)
                        notifies.append((notice - sent) / 1e9)
                        syncs.append((now - notice) / 1e9)
                key = page["key"]
                notify_times[:] = [(seq, at) for seq, at in notify_times if seq > key]
                if not page["more"] and notified <= key:
                    break

    async def send(link: Any, conversation: int, offset: float) -> None:
        interval = len(pairs) / rate
        await asyncio.sleep(offset)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            tick = time.perf_counter()
            await request(
                link,
                {
                    "type": "send",
                    "conversation": conversation,
                    "client_msg_id": f"e{time.time_ns()}",
                    "content": {"text": f"{time.perf_counter_ns()} x"},
                },
            )
            acks.append(time.perf_counter() - tick)
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))

    tasks = [asyncio.create_task(receive(link, hello)) for link, hello in receivers]
    with CpuMeter(server_pid=server_pid or -1) as meter:
        await asyncio.gather(
            *(
                send(link, conv, i / rate)
                for i, ((link, _), (_, _, conv)) in enumerate(zip(senders, pairs, strict=True))
            )
        )
        await asyncio.sleep(1.0)
    stop.set()
    for task in tasks:
        task.cancel()
    for link, _ in senders + receivers:
        await link.close()
    result: dict[str, Any] = {
        "messages": len(latencies),
        **percentiles(latencies),
        "stages": {
            "send_to_ack": percentiles(acks),
            "send_to_notify": percentiles(notifies),
            "notify_to_synced": percentiles(syncs),
        },
    }
    if server_pid is not None:
        result["cpu_ms_per_message"] = meter.per_event_ms(len(latencies))
    result["load_average"] = [round(load, 2) for load in os.getloadavg()]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="10,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument("--synapse", action="store_true")
    parser.add_argument("--variants", default="")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    configure()
    pairs = make_pairs(PAIRS)
    rates = [float(r) for r in args.rates.split(",")]
    results: dict[str, Any] = {}
    variants = parse_variants(args.variants)
    for round_ in range(args.rounds):
        for server in args.servers.split(","):
            for name, env in variants.items():
                label = server if not args.variants else f"{server} {name}"
                if args.rounds > 1:
                    label += f" round {round_ + 1}"
                with Cluster(server, **env) as cluster:
                    results[label] = {
                        f"{rate:g}_per_second": asyncio.run(
                            measure(cluster.ws_url, pairs, rate, args.seconds, cluster.pid)
                        )
                        for rate in rates
                    }
    if args.synapse:
        from _synapse_workloads import synapse_e2e_latency

        results["synapse"] = {
            f"{rate:g}_per_second": asyncio.run(synapse_e2e_latency(rate, args.seconds, PAIRS))
            for rate in rates
        }
    emit({"benchmark": "e2e_latency", "pairs": PAIRS, "seconds": args.seconds, **results})


if __name__ == "__main__":
    main()
