"""A hot red packet: 100 shares in a 500-member group, all 500 members grabbing
over websockets at the same moment (issue 14's target: all answered within 1 s).

    .venv/bin/python bench/redpacket_hot.py [--members 500] [--shares 100] [--rounds 3]
                                            [--servers uvicorn,daphne]

The production layout per server kind (bench/_cluster.py: one ASGI process, a
Celery worker for delivery, plus one on `payout_fast` for the credits). Every
member holds an open link (hello received) before a round starts; each round
sends a new packet, then every member's `redpacket.grab` frame at once. Reports,
per round: time from the first grab frame sent to the last answer, each grab's
latency (p50/p95/p99), winners (must equal the shares), and how long until
every grab was credited. Prints JSON (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from _cluster import Cluster, make_group
from _setup import emit
from _ws import open_link, percentiles, request


def _send_packet(owner_ticket: str, owner_id: int, group: int, shares: int) -> int:
    from accounts.models import User
    from accounts.tickets import ticket_verify
    from redpackets.services.sending import PacketRequest, packet_send
    from tests.factories import fund_wallet

    fund_wallet(User.objects.get(pk=owner_id), 20_000)
    request_ = PacketRequest(
        conversation_id=group, client_id=uuid.uuid4().hex, kind="lucky",
        total_amount=20_000, shares=shares, greeting="Hot",
    )  # fmt: skip
    sent = packet_send(ticket=ticket_verify(token=owner_ticket), user_id=owner_id, request=request_)
    return int(sent.packet.pk)


def _credited_after(packet_id: int, started: float, timeout: float = 120.0) -> float | None:
    from redpackets.models import Grab

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Grab.objects.filter(packet_id=packet_id, credit_state="arriving").exists():
            return round(time.perf_counter() - started, 3)
        time.sleep(0.05)
    return None


async def _round(links: list[Any], packet_id: int) -> dict[str, Any]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    ends: list[float] = []

    async def grab(link: Any) -> None:
        started = time.perf_counter()
        reply = await request(link, {"type": "redpacket.grab", "packet": packet_id})
        ended = time.perf_counter()
        latencies.append(ended - started)
        ends.append(ended)
        key = reply.get("outcome") or reply.get("code", "error")
        outcomes[key] = outcomes.get(key, 0) + 1

    first = time.perf_counter()
    await asyncio.gather(*(grab(link) for link in links))
    return {
        "first_grab_to_last_answer_ms": round((max(ends) - first) * 1000, 1),
        "outcomes": outcomes,
        **percentiles(latencies),
        "_started": first,
    }


async def _measure(cluster: Cluster, members: list[Any], group: int, args: Any) -> list[Any]:
    opened = await asyncio.gather(*(open_link(cluster.ws_url, m.ticket) for m in members))
    links = [link for link, _ in opened]
    rounds = []
    try:
        for _ in range(args.rounds):
            packet_id = await asyncio.to_thread(
                _send_packet, members[0].ticket, members[0].user_id, group, args.shares
            )
            result = await _round(links, packet_id)
            started = result.pop("_started")
            result["all_credited_after_s"] = await asyncio.to_thread(
                _credited_after, packet_id, started
            )
            rounds.append(result)
    finally:
        await asyncio.gather(*(link.close() for link in links))
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--shares", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default="uvicorn,daphne")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    group = members = None
    for server in args.servers.split(","):
        with Cluster(server) as cluster:
            from devtools.processes import start_celery_worker

            payout = start_celery_worker(
                log_dir=cluster.log_dir, env=cluster.env, queues="payout_fast", name="payout"
            )
            cluster.processes.append(payout)
            if group is None:
                # Nothing here checks passwords: a fast hasher makes 500 users quickly.
                from django.conf import settings
                from django.contrib.auth.hashers import get_hashers

                settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
                get_hashers.cache_clear()  # type: ignore[attr-defined]
                group, members = make_group(args.members)
            assert members is not None
            results[server] = asyncio.run(_measure(cluster, members, group, args))
    emit({
        "benchmark": "redpacket_hot", "members": args.members, "shares": args.shares,
        "grabbers": args.members, **results,
    })  # fmt: skip


if __name__ == "__main__":
    main()
