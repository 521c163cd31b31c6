"""Sustained red packets: packet sends per second and grabs per second across many
packets, each as a ratio to plain 1:1 text sends measured in the same run
(issue 14's target: at least 50 %).

    .venv/bin/python bench/redpacket_sustained.py [--pairs 8] [--seconds 8] [--rounds 3]
                                                  [--server uvicorn]

The production layout (bench/_cluster.py: one ASGI process, a Celery worker for
delivery, plus one on `payout_fast` crediting the grabs as they come, as in
production). `--pairs` friends with their 1:1 chat; each sender has a funded
wallet. Each round runs three phases, one after another, with every sender (or
receiver) sending its frames one at a time, waiting for each answer:

1. **text**: each sender sends `send` frames (plain text) for `--seconds`;
2. **packet send**: each sender sends `redpacket.send` frames (one share, 1 CNY)
   to its friend for `--seconds`;
3. **grab**: each receiver opens every packet of phase 2 sent to them
   (`redpacket.grab`, each a different packet and a winning grab, so each one is
   the full transaction: the packet's lock, the split, the grab row, the bubble's
   entries, the credit enqueued), as fast as it can.

Phases alternate so that the machine's drift (docs/performance.md) hits both
sides of a ratio alike. Per round: each phase's rate, ack latency percentiles
and CPU milliseconds per operation by process kind (bench/_cpu.py), and the two
ratios; overall, the median ratio. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from _cluster import Cluster, Member, make_pairs
from _cpu import CpuMeter
from _setup import emit
from _ws import open_link, percentiles, request, send_text

PACKET_FEN = 100


def _fund(pairs: list[tuple[Member, Member, int]], fen: int) -> None:
    from accounts.models import User
    from tests.factories import fund_wallet

    for sender, _, _ in pairs:
        fund_wallet(User.objects.get(pk=sender.user_id), fen)


async def _phase(
    jobs: list[tuple[Any, Any]], operation: Any, seconds: float | None, pid: int
) -> tuple[dict[str, Any], list[Any]]:
    """Run `operation(link, work)` over each job's link, one at a time per link, until
    `seconds` pass (or, without `seconds`, until each job's work list is done)."""
    latencies: list[float] = []
    results: list[Any] = []
    meter = CpuMeter(server_pid=pid)
    deadline = time.perf_counter() + seconds if seconds else None

    async def run(link: Any, work: Any) -> None:
        if deadline is not None:
            while time.perf_counter() < deadline:
                took, result = await operation(link, work)
                latencies.append(took)
                results.append(result)
        else:
            for item in work:
                took, result = await operation(link, item)
                latencies.append(took)
                results.append(result)

    started = time.perf_counter()
    with meter:
        await asyncio.gather(*(run(link, work) for link, work in jobs))
    elapsed = time.perf_counter() - started
    summary = {
        "operations": len(latencies),
        "seconds": round(elapsed, 2),
        "per_second": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        **percentiles(latencies),
        "cpu_ms_per_operation": meter.per_event_ms(len(latencies)),
    }
    return summary, results


async def _text(link: Any, conversation: int) -> tuple[float, None]:
    return await send_text(link, conversation, "plain text"), None


async def _packet(link: Any, conversation: int) -> tuple[float, tuple[int, int]]:
    started = time.perf_counter()
    reply = await request(link, {
        "type": "redpacket.send", "conversation": conversation, "client_id": uuid.uuid4().hex,
        "kind": "lucky", "total_amount": PACKET_FEN, "shares": 1, "greeting": "Sustained",
    })  # fmt: skip
    if reply.get("type") != "redpacket.send.ack":
        raise RuntimeError(f"packet send failed: {reply}")
    return time.perf_counter() - started, (conversation, int(reply["packet"]))


async def _grab(link: Any, packet: int) -> tuple[float, str]:
    started = time.perf_counter()
    reply = await request(link, {"type": "redpacket.grab", "packet": packet})
    if reply.get("type") != "redpacket.grab.ack":
        raise RuntimeError(f"grab failed: {reply}")
    return time.perf_counter() - started, str(reply["outcome"])


async def _round(
    cluster: Cluster, pairs: list[tuple[Member, Member, int]], seconds: float
) -> dict[str, Any]:
    pid = cluster.pid
    senders = [await open_link(cluster.ws_url, sender.ticket) for sender, _, _ in pairs]
    try:
        text, _ = await _phase(
            [(link, conv) for (link, _), (_, _, conv) in zip(senders, pairs, strict=True)],
            _text, seconds, pid,
        )  # fmt: skip
        sends, sent = await _phase(
            [(link, conv) for (link, _), (_, _, conv) in zip(senders, pairs, strict=True)],
            _packet, seconds, pid,
        )  # fmt: skip
    finally:
        for link, _ in senders:
            await link.close()
    by_chat: dict[int, list[int]] = {}
    for conversation, packet in sent:
        by_chat.setdefault(conversation, []).append(packet)
    receivers = [await open_link(cluster.ws_url, receiver.ticket) for _, receiver, _ in pairs]
    work = [by_chat.get(conv, []) for _, _, conv in pairs]
    try:
        grabs, outcomes = await _phase(
            [(link, packets) for (link, _), packets in zip(receivers, work, strict=True)],
            _grab, None, pid,
        )  # fmt: skip
    finally:
        for link, _ in receivers:
            await link.close()
    counted: dict[str, int] = {}
    for outcome in outcomes:
        counted[outcome] = counted.get(outcome, 0) + 1
    grabs["outcomes"] = counted
    return {
        "text_sends": text,
        "packet_sends": sends,
        "grabs": grabs,
        "packet_sends_to_text": round(sends["per_second"] / text["per_second"], 3),
        "grabs_to_text": round(grabs["per_second"] / text["per_second"], 3),
    }


def _credited_within(senders: list[int], timeout: float = 120.0) -> float | None:
    from redpackets.models import Grab

    started = time.perf_counter()
    arriving = Grab.objects.filter(packet__sender_id__in=senders, credit_state="arriving")
    while time.perf_counter() - started < timeout:
        if not arriving.exists():
            return round(time.perf_counter() - started, 2)
        time.sleep(0.1)
    return None


def _statements(pair: tuple[Member, Member, int]) -> dict[str, int]:
    """SQL statements of one text send, one packet send and one grab, through the
    services in this process (what each operation asks of PostgreSQL)."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.tickets import ticket_verify
    from messaging.services.sending import message_send
    from messaging.types import OutgoingContent
    from redpackets.services.grabbing import packet_grab
    from redpackets.services.sending import PacketRequest, packet_send

    settings.MESSAGING_SENDS_PER_MINUTE = 10_000_000  # as the servers run (bench/_cluster.py)
    sender, receiver, conversation = pair
    ticket = ticket_verify(token=sender.ticket)
    counts = {}
    with CaptureQueriesContext(connection) as text:
        message_send(
            ticket=ticket, user_id=sender.user_id, conversation_id=conversation,
            client_msg_id=uuid.uuid4().hex, content=OutgoingContent(kind="text", text="count"),
        )  # fmt: skip
    counts["text_send"] = len(text.captured_queries)
    request_ = PacketRequest(
        conversation_id=conversation, client_id=uuid.uuid4().hex, kind="lucky",
        total_amount=PACKET_FEN, shares=1, greeting="count",
    )  # fmt: skip
    with CaptureQueriesContext(connection) as send:
        sent = packet_send(ticket=ticket, user_id=sender.user_id, request=request_)
    counts["packet_send"] = len(send.captured_queries)
    with CaptureQueriesContext(connection) as grab:
        packet_grab(
            ticket=ticket_verify(token=receiver.ticket), user_id=receiver.user_id,
            packet_id=sent.packet.pk,
        )  # fmt: skip
    counts["grab"] = len(grab.captured_queries)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", default="uvicorn")
    args = parser.parse_args()
    with Cluster(args.server) as cluster:
        from devtools.processes import start_celery_worker

        payout = start_celery_worker(
            log_dir=cluster.log_dir, env=cluster.env, queues="payout_fast", name="payout"
        )
        cluster.processes.append(payout)
        pairs = make_pairs(args.pairs)
        # Enough for every round's packets at well over any rate this machine reaches.
        _fund(pairs, PACKET_FEN * 400 * int(args.seconds * args.rounds + 1))
        rounds = [asyncio.run(_round(cluster, pairs, args.seconds)) for _ in range(args.rounds)]
        credited_after = _credited_within([sender.user_id for sender, _, _ in pairs])
        statements = _statements(pairs[0])
    emit({
        "benchmark": "redpacket_sustained", "server": args.server, "pairs": args.pairs,
        "seconds_per_phase": args.seconds, "rounds": rounds,
        "median_packet_sends_to_text": statistics.median(r["packet_sends_to_text"] for r in rounds),
        "median_grabs_to_text": statistics.median(r["grabs_to_text"] for r in rounds),
        "all_grabs_credited_after_last_round_s": credited_after,
        "sql_statements_per_operation": statements,
        "target_ratio": 0.5,
    })  # fmt: skip


if __name__ == "__main__":
    main()
