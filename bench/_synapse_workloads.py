"""The benchmark workloads, run against Matrix Synapse through its client-server API
(send + /sync with `since`), so each script can report ratios measured side by
side. Synapse runs on PostgreSQL with its rate limits off (bench/synapse_harness.py).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

from _ws import percentiles
from synapse_harness import SynapseClient, SynapseServer, SynapseUser

# Cheap password hashing: registering hundreds of users is set-up, not what we measure.
EXTRA_CONFIG = {"bcrypt_rounds": 4, "filter_timeline_limit": 1000}
_txn = itertools.count()


def _server(name: str) -> SynapseServer:
    return SynapseServer(database=f"synapse_bench_{name}", extra_config=EXTRA_CONFIG)


async def _users(client: SynapseClient, count: int, prefix: str) -> list[SynapseUser]:
    semaphore = asyncio.Semaphore(16)

    async def one(n: int) -> SynapseUser:
        async with semaphore:
            return await client.register(f"{prefix}{n}x{uuid.uuid4().hex[:6]}", "bench-pass-1")

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _pairs(client: SynapseClient, count: int) -> list[tuple[SynapseUser, SynapseUser, str]]:
    senders = await _users(client, count, "s")
    receivers = await _users(client, count, "r")
    rooms = await asyncio.gather(
        *(client.create_room(s, [r]) for s, r in zip(senders, receivers, strict=True))
    )
    return list(zip(senders, receivers, rooms, strict=True))


async def _send(client: SynapseClient, user: SynapseUser, room: str, body: str) -> float:
    started = time.perf_counter()
    await client.send_text(user, room, body, f"t{next(_txn)}-{time.time_ns()}")
    return time.perf_counter() - started


async def _senders(
    client: SynapseClient, jobs: list[tuple[SynapseUser, str]], seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def run(user: SynapseUser, room: str) -> None:
        n = 0
        while time.perf_counter() < deadline:
            latencies.append(await _send(client, user, room, f"message {n}"))
            n += 1

    started = time.perf_counter()
    await asyncio.gather(*(run(user, room) for user, room in jobs))
    elapsed = time.perf_counter() - started
    return {
        "messages": len(latencies),
        "messages_per_second": round(len(latencies) / elapsed, 1),
        **percentiles(latencies),
    }


async def synapse_send_throughput(seconds: float) -> dict[str, Any]:
    with _server("throughput") as server:
        async with server.client(max_connections=64) as client:
            pairs = await _pairs(client, 32)
            members = await _users(client, 99, "m")
            group_room = await client.create_room(pairs[0][0], members)
            one = await _senders(client, [(pairs[0][0], pairs[0][2])], seconds)
            many = await _senders(client, [(s, room) for s, _, room in pairs], seconds)
            grouped = await _senders(client, [(pairs[0][0], group_room)], seconds)
    return {"one_sender": one, "32_senders": many, "group_100": grouped}


async def synapse_e2e_latency(rate: float, seconds: float, pairs_count: int) -> dict[str, Any]:
    """Messages at `rate`/s spread over the pairs; each receiver long-polls /sync."""
    with _server("e2e") as server:
        async with server.client(max_connections=4 * pairs_count + 8) as client:
            pairs = await _pairs(client, pairs_count)
            starts = [(await client.sync(r, None, 0)).next_batch for _, r, _ in pairs]
            latencies: list[float] = []
            stop = asyncio.Event()

            async def receive(receiver: SynapseUser, since: str) -> None:
                while not stop.is_set():
                    result = await client.sync(receiver, since, 5000)
                    now = time.perf_counter_ns()
                    since = result.next_batch
                    for message in result.messages:
                        sent_ns = int(message.body.split(" ", 1)[0])
                        latencies.append((now - sent_ns) / 1e9)

            async def send(sender: SynapseUser, room: str, offset: float) -> None:
                interval = pairs_count / rate
                await asyncio.sleep(offset)
                deadline = time.perf_counter() + seconds
                while time.perf_counter() < deadline:
                    tick = time.perf_counter()
                    await client.send_text(
                        sender, room, f"{time.perf_counter_ns()} x", uuid.uuid4().hex
                    )
                    await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))

            receivers = [
                asyncio.create_task(receive(r, s))
                for (_, r, _), s in zip(pairs, starts, strict=True)
            ]
            await asyncio.sleep(0.5)
            await asyncio.gather(
                *(send(s, room, i * (1 / rate)) for i, (s, _, room) in enumerate(pairs))
            )
            await asyncio.sleep(2.0)  # the last messages land
            stop.set()
            for task in receivers:
                task.cancel()
    return {"messages": len(latencies), **percentiles(latencies)}


async def synapse_catchup(total: int, rooms: int) -> dict[str, Any]:
    """One receiver in `rooms` rooms is away while `total` messages arrive; then it syncs."""
    with _server("catchup") as server:
        async with server.client(max_connections=rooms + 8) as client:
            receiver = (await _users(client, 1, "away"))[0]
            senders = await _users(client, rooms, "s")
            room_ids = await asyncio.gather(*(client.create_room(s, [receiver]) for s in senders))
            since = (await client.sync(receiver, None, 0)).next_batch
            per_room = total // rooms

            async def fill(sender: SynapseUser, room: str) -> None:
                for n in range(per_room):
                    await client.send_text(sender, room, f"{n}", uuid.uuid4().hex)

            filled = time.perf_counter()
            await asyncio.gather(*(fill(s, r) for s, r in zip(senders, room_ids, strict=True)))
            fill_seconds = time.perf_counter() - filled
            started = time.perf_counter()
            result = await client.sync(receiver, since, 0, limit=1000)
            seconds = time.perf_counter() - started
    return {
        "messages": len(result.messages),
        "catch_up_seconds": round(seconds, 3),
        "requests": 1 + result.requests,
        "fill_messages_per_second": round(per_room * rooms / fill_seconds, 1),
    }


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def synapse_idle_connections(count: int) -> dict[str, Any]:
    """`count` users each hold an idle long-poll /sync; RSS of Synapse before and after."""
    with _server("idle") as server:
        async with server.client(max_connections=count + 16, timeout=300) as client:
            users = await _users(client, count, "idle")
            semaphore = asyncio.Semaphore(16)

            async def first_sync(user: SynapseUser) -> str:
                async with semaphore:  # an initial sync answers at once
                    return (await client.sync(user, None, 0)).next_batch

            tokens = await asyncio.gather(*(first_sync(u) for u in users))
            await asyncio.sleep(1.0)
            before = _rss_kib(server.pid)
            polls = [
                asyncio.create_task(client.sync(u, token, 120_000))
                for u, token in zip(users, tokens, strict=True)
            ]
            await asyncio.sleep(10.0)  # every request arrived and is waiting
            after = _rss_kib(server.pid)
            held = sum(not task.done() for task in polls)
            for task in polls:
                task.cancel()
    return {
        "connections": count,
        "held": held,
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / count, 1),
    }
