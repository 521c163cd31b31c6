"""Smoke test for the Synapse benchmark harness (bench/synapse_harness.py).

Installs Synapse if needed, starts it on a fresh PostgreSQL database, registers
two users, creates a room, sends 20 messages from one user and has the other
catch up with /sync from a token taken before the sends. Checks that all 20
arrive in order exactly once and prints a JSON object of timings with
`"ok": true`; exits non-zero on any failure.

    /work/main/.venv/bin/python bench/synapse_smoke.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any

from synapse_harness import (
    SynapseClient,
    SynapseServer,
    ensure_synapse_installed,
    synapse_version,
)

MESSAGES = 20


async def drive(client: SynapseClient) -> dict[str, Any]:
    started = time.perf_counter()
    alice, bob = await asyncio.gather(
        client.register("alice", "alice-password"), client.register("bob", "bob-password")
    )
    register_ms = (time.perf_counter() - started) * 1000 / 2

    started = time.perf_counter()
    room_id = await client.create_room(alice, [bob])
    create_room_ms = (time.perf_counter() - started) * 1000

    since = (await client.sync(bob, None, timeout_ms=0)).next_batch

    sent: list[str] = []
    send_ms: list[float] = []
    for i in range(MESSAGES):
        started = time.perf_counter()
        sent.append(await client.send_text(alice, room_id, f"message {i}", f"smoke-{i}"))
        send_ms.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    result = await client.sync(bob, since, timeout_ms=0)
    catch_up_ms = (time.perf_counter() - started) * 1000
    got = [m.event_id for m in result.messages if m.room_id == room_id]
    if got != sent:
        raise AssertionError(f"catch-up returned {len(got)} events, expected {sent}, got {got}")
    bodies = [m.body for m in result.messages]
    if bodies != [f"message {i}" for i in range(MESSAGES)]:
        raise AssertionError(f"unexpected bodies {bodies}")
    if any(m.sender != alice.user_id for m in result.messages):
        raise AssertionError("a message has the wrong sender")

    # The same catch-up with a timeline limit of 5 must page back with /messages
    # and still return every message exactly once, in order.
    started = time.perf_counter()
    paged = await client.sync(bob, since, timeout_ms=0, limit=5)
    paged_catch_up_ms = (time.perf_counter() - started) * 1000
    if [m.event_id for m in paged.messages] != sent or paged.paged_rooms != [room_id]:
        raise AssertionError(
            f"paged catch-up returned {len(paged.messages)} events via {paged.paged_rooms}"
        )

    # Nothing new after next_batch: a short long-poll comes back empty.
    empty = await client.sync(bob, result.next_batch, timeout_ms=100)
    if empty.messages:
        raise AssertionError(f"sync after next_batch returned {len(empty.messages)} events")

    return {
        "register_ms": round(register_ms, 1),
        "create_room_ms": round(create_room_ms, 1),
        "send_p50_ms": round(statistics.median(send_ms), 2),
        "send_max_ms": round(max(send_ms), 2),
        "catch_up_ms": round(catch_up_ms, 2),
        "catch_up_messages": len(got),
        "paged_catch_up_ms": round(paged_catch_up_ms, 2),
        "paged_catch_up_requests": paged.requests,
    }


def main() -> int:
    started = time.perf_counter()
    python = ensure_synapse_installed()
    install_s = time.perf_counter() - started
    report: dict[str, Any] = {"synapse_version": synapse_version(python)}
    server = SynapseServer(database="synapse_smoke", python=python)
    started = time.perf_counter()
    server.start()
    try:
        start_s = time.perf_counter() - started

        async def run() -> dict[str, Any]:
            async with server.client() as client:
                return await drive(client)

        report.update(
            install_s=round(install_s, 2), start_s=round(start_s, 2), **asyncio.run(run())
        )
    except BaseException:
        print(f"Synapse log: {server.log_path}", file=sys.stderr)
        server.stop(remove_dir=False)
        raise
    server.stop()
    report["ok"] = True
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
