"""Replication between two data centres (issue 17): lag, catch-up, outbox cost.

    .venv/bin/python bench/replication.py [--rates 10,200] [--seconds 10] \
        [--pairs 10] [--cut-seconds 60] [--sends 300] [--outbox-only] \
        [--sender ws|http] [--ws-sends 100] [--ws-rounds 4] [--no-cut]

Two data centres on this machine (tests/support/datacentres.py: two databases
derived from the benchmark database's name, a private Redis each, one uvicorn,
relay and replay each, RabbitMQ on localhost). `--pairs` users homed in `bx`
each chat with a friend homed in `by`, in chats mastered in bx.

- lag: at each rate of `--rates` (messages/s over all pairs for `--seconds`,
  sent over bx's websocket, one link per sender as bench/send_throughput.py
  does, each link sending its share in turn as its acks come: the group commit's
  path; or with `--sender http` through bx's HTTP API, the thread path), the
  time from the message's write in bx (messaging_message.created_at) to its
  entry in the recipient's log in by (messaging_syncentry.created_at): p50, p99,
  max. Both clocks are this machine's.
- catch-up: bx's relay is stopped for `--cut-seconds` while bx keeps sending at
  the first rate (the queue unreachable from bx); then restarted: seconds until
  the last message of the cut is in by.
- outbox overhead: in this process, on the benchmark database, `--sends`
  sends alternating in batches between one data centre (no outbox) and several
  (the conversation has a member homed elsewhere: outbox row, NOTIFY, local-only
  delivery), same run; the ratio of median per-send times (the thread path's
  message_send).
- outbox overhead over the websocket: a one-data-centre server (bench/_cluster.py,
  uvicorn, on the benchmark database) beside bx, one sender sending
  `--ws-sends` messages one after another (each waiting for its ack) into a
  1:1 chat in each, in `--ws-rounds` rounds alternating the order: bx's chat
  with a peer homed in by (outbox row in the group commit's batch) against the
  one data centre's; also bx's chat of two users homed there (data centres on,
  no outbox row). Medians of the ack times and their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _setup import configure, emit

# Every server of the run (both data centres', the one data centre's).
SERVERS = {
    "LOG_LEVEL": "WARNING",
    "MESSAGING_SENDS_PER_MINUTE": "10000000",
    "MONITORING_GUARD_ENABLED": "false",
    "ADMISSION_ENABLED": "false",
    "FRIEND_REQUESTS_PER_DAY": "1000000",
    "SHAKE_ENGINE_THREAD": "false",
}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="10,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--cut-seconds", type=float, default=60.0)
    parser.add_argument("--sends", type=int, default=300)
    parser.add_argument("--outbox-only", action="store_true",
                        help="only the outbox's cost on a local send (in-process)")  # fmt: skip
    parser.add_argument("--sender", choices=("ws", "http"), default="ws")
    parser.add_argument("--ws-sends", type=int, default=100)
    parser.add_argument("--ws-rounds", type=int, default=4)
    parser.add_argument("--no-cut", action="store_true", help="skip the catch-up measurement")
    args = parser.parse_args()
    env = configure()
    overhead = outbox_overhead(args.sends)
    if args.outbox_only:
        emit({"bench": "replication", "load_average": os.getloadavg(),
              "outbox_overhead": overhead})  # fmt: skip
        return
    from tests.support.datacentres import datacentres_running

    server_env = env | SERVERS
    from devtools.processes import collect_static

    collect_static(server_env)
    with (
        tempfile.TemporaryDirectory() as logs,
        datacentres_running(env=server_env, log_dir=Path(logs), names=("bx", "by")) as (bx, by),
    ):
        chats = asyncio.run(setup_pairs(bx, by, args.pairs))
        sender = send_at_rate_ws if args.sender == "ws" else send_at_rate
        results: dict[str, Any] = {"sender": args.sender}
        for rate in [float(r) for r in args.rates.split(",")]:
            started = time.time()
            sent, elapsed = asyncio.run(sender(bx, chats, rate, args.seconds))
            lags = wait_lags(by, chats, started, sent)
            shipped = [float(row[0]) for row in bx.query(SHIPPED, [started])]
            results[f"{rate:g}_per_s"] = {
                "sent": sent,
                "achieved_rate": round(sent / elapsed, 1),
                "lag_p50_ms": round(quantile(lags, 0.5) * 1000, 1),
                "lag_p99_ms": round(quantile(lags, 0.99) * 1000, 1),
                "lag_max_ms": round(max(lags) * 1000, 1) if lags else None,
                # Of which: from the outbox row's write to the broker's confirm (relay).
                "shipped_p50_ms": round(quantile(shipped, 0.5) * 1000, 1),
                "shipped_p99_ms": round(quantile(shipped, 0.99) * 1000, 1),
            }
        catchup = (
            None
            if args.no_cut
            else cut_and_catch_up(
                bx, by, chats, float(args.rates.split(",")[0]), args.cut_seconds, sender
            )
        )
        # Last: it stops bx's relay for a while.
        ws_overhead = (
            websocket_overhead(bx, by, chats[0], args.ws_sends, args.ws_rounds)
            if args.ws_sends
            else None
        )
    emit(
        {
            "bench": "replication",
            "load_average": os.getloadavg(),
            "pairs": args.pairs,
            "lag": results,
            "catch_up": catchup,
            "outbox_overhead": overhead,
            "outbox_overhead_websocket": ws_overhead,
        },
    )


# --- Two data centres -------------------------------------------------------------------------


async def _register(http: Any, dc: Any, name: str) -> dict[str, Any]:
    from tests.factories import device_json

    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": "a-long-enough-passphrase", "nickname": name,
            "device": device_json()}  # fmt: skip
    response = await http.post(f"{dc.url}/api/accounts/register", json=body)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def setup_pairs(
    bx: Any, by: Any, pairs: int, *, peers_at: Any = None
) -> list[tuple[dict[str, Any], int]]:
    """`pairs` users homed in bx, each with a friend homed in `peers_at` (by unless
    given) and their 1:1 chat, opened in bx (mastered there)."""
    import httpx

    peers_at = peers_at or by
    async with httpx.AsyncClient(timeout=120) as http:
        chats = []
        for index in range(pairs):
            a = await _register(http, bx, f"a{index}")
            b = await _register(http, peers_at, f"b{index}")
            a_auth = {"Authorization": f"Ticket {a['ticket']}"}
            b_auth = {"Authorization": f"Ticket {b['ticket']}"}
            while not bx.query("SELECT 1 FROM accounts_user WHERE id = %s", [b["user"]["id"]]):
                await asyncio.sleep(0.05)
            asked = await http.post(f"{bx.url}/api/contacts/requests", headers=a_auth,
                                    json={"to_user_id": b["user"]["id"]})  # fmt: skip
            asked.raise_for_status()
            request_id = asked.json()["request"]["id"]
            while not peers_at.query(
                "SELECT 1 FROM accounts_friendrequest WHERE id = %s", [request_id]
            ):
                await asyncio.sleep(0.05)
            accepted = await http.post(
                f"{peers_at.url}/api/contacts/requests/{request_id}/accept",
                headers=b_auth,
                json={},
            )
            accepted.raise_for_status()
            # Both rows of the friendship at bx (each side's comes from its home).
            pair = [a["user"]["id"], b["user"]["id"]]
            friends = (
                "SELECT count(*) FROM accounts_friendship "
                "WHERE owner_id = ANY(%s) AND friend_id = ANY(%s)"
            )
            while bx.query(friends, [pair, pair])[0][0] < 2:
                await asyncio.sleep(0.05)
            opened = await http.post(f"{bx.url}/api/messaging/conversations/direct",
                                     headers=a_auth, json={"user_id": b["user"]["id"]})  # fmt: skip
            opened.raise_for_status()
            chats.append((a, int(opened.json()["conversation"]["id"])))
        return chats


async def send_at_rate_ws(
    dc: Any, chats: list[tuple[dict[str, Any], int]], rate: float, seconds: float
) -> tuple[int, float]:
    """Sends at `rate` over all chats for `seconds`, over one websocket per sender:
    the n-th send is due at n / rate, to chat n modulo their number; a link sends
    its due sends one after another, each once the previous one's ack came (a send
    waits behind a slow ack rather than being dropped). Returns the sends
    acknowledged and the seconds until the last ack."""
    from _ws import open_link, send_text

    links = [(await open_link(dc.ws_url, user["ticket"]))[0] for user, _ in chats]
    due: list[asyncio.Queue[bool]] = [asyncio.Queue() for _ in chats]
    sent = 0

    async def sender(index: int) -> None:
        nonlocal sent
        while await due[index].get():
            await send_text(links[index], chats[index][1], "bench")
            sent += 1

    senders = [asyncio.create_task(sender(index)) for index in range(len(chats))]
    interval = 1.0 / rate
    start = time.monotonic()
    index = 0
    while time.monotonic() - start < seconds:
        due[index % len(chats)].put_nowait(True)
        index += 1
        await asyncio.sleep(max(0.0, start + index * interval - time.monotonic()))
    for queue in due:
        queue.put_nowait(False)
    await asyncio.gather(*senders)
    elapsed = time.monotonic() - start
    for link in links:
        await link.close()
    return sent, elapsed


async def send_at_rate(
    dc: Any, chats: list[tuple[dict[str, Any], int]], rate: float, seconds: float
) -> tuple[int, float]:
    import httpx

    interval = 1.0 / rate
    sent = 0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as http:

        async def one(user: dict[str, Any], chat: int) -> None:
            nonlocal sent
            response = await http.post(
                f"{dc.url}/api/messaging/send",
                headers={"Authorization": f"Ticket {user['ticket']}"},
                json={"conversation": chat, "client_msg_id": uuid.uuid4().hex,
                      "content": {"kind": "text", "text": "bench"}},
            )  # fmt: skip
            if response.status_code in (200, 201):
                sent += 1

        tasks = []
        start = time.monotonic()
        index = 0
        while time.monotonic() - start < seconds:
            user, chat = chats[index % len(chats)]
            tasks.append(asyncio.create_task(one(user, chat)))
            index += 1
            await asyncio.sleep(max(0.0, start + index * interval - time.monotonic()))
        await asyncio.gather(*tasks)
    return sent, time.monotonic() - start


LAGS = """
SELECT EXTRACT(EPOCH FROM e.created_at - m.created_at)
FROM messaging_syncentry e JOIN messaging_message m ON m.id = e.message_id
WHERE e.conversation_id = ANY(%s) AND m.created_at >= to_timestamp(%s) AND m.kind = 'text'
"""


SHIPPED = """
SELECT EXTRACT(EPOCH FROM shipped_at - created_at) FROM wechat_core_outboxentry
WHERE kind = 'conversation_event' AND created_at >= to_timestamp(%s) AND shipped_at IS NOT NULL
"""


def wait_lags(
    by: Any, chats: list[tuple[dict[str, Any], int]], since: float, sent: int
) -> list[float]:
    ids = [chat for _, chat in chats]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rows = by.query(LAGS, [ids, since])
        if len(rows) >= sent:
            return [float(row[0]) for row in rows]
        time.sleep(0.2)
    raise RuntimeError(f"only {len(rows)} of {sent} messages reached by")


def cut_and_catch_up(bx: Any, by: Any, chats: list[tuple[dict[str, Any], int]], rate: float,
                     seconds: float, sender: Any) -> dict[str, Any]:  # fmt: skip
    bx.kill("relay")
    started = time.time()
    sent, _ = asyncio.run(sender(bx, chats, rate, seconds))
    backlog = bx.query("SELECT count(*) FROM wechat_core_outboxentry WHERE shipped_at IS NULL")
    restarted = time.monotonic()
    bx.start("relay")
    wait_lags(by, chats, started, sent)
    return {
        "cut_seconds": seconds,
        "sent_during_cut": sent,
        "outbox_backlog_at_restart": int(backlog[0][0]),
        "catch_up_seconds": round(time.monotonic() - restarted, 2),
    }


# --- Outbox overhead over the websocket --------------------------------------------------------


def websocket_overhead(bx: Any, by: Any, remote: tuple[dict[str, Any], int], sends: int,
                       rounds: int) -> dict[str, Any]:  # fmt: skip
    """Ack times of one sender's sends, one after another: bx's chat with a peer
    homed in by (`remote`), bx's chat of two users homed there, and a 1:1 chat on
    a one-data-centre server, the variants alternating round by round. Twice: with
    bx's relay running (each send then also costs the relay's round and by's
    replay, on the same two cores), and with it stopped (the send's own cost: the
    outbox row and the NOTIFY; the relay ships the backlog once restarted)."""
    from _cluster import Cluster, make_pairs
    from _ws import open_link, send_text

    (local,) = asyncio.run(setup_pairs(bx, by, 1, peers_at=bx))
    results: dict[str, Any] = {"sends_each": sends * rounds}
    with Cluster("uvicorn", **SERVERS) as one:
        (sender, _receiver, chat) = make_pairs(1)[0]
        targets = {
            "one_datacentre": (one.ws_url, sender.ticket, chat),
            "with_outbox": (bx.ws_url, remote[0]["ticket"], remote[1]),
            "datacentres_no_outbox": (bx.ws_url, local[0]["ticket"], local[1]),
        }

        async def measure(name: str, count: int) -> list[float]:
            url, ticket, conversation = targets[name]
            link, _ = await open_link(url, ticket)
            try:
                return [await send_text(link, conversation, "bench") for _ in range(count)]
            finally:
                await link.close()

        for name in targets:  # warm-up: connections, caches, the first send's work-out
            asyncio.run(measure(name, 5))
        for phase in ("relay_running", "relay_stopped"):
            if phase == "relay_stopped":
                bx.kill("relay")
            times: dict[str, list[float]] = {name: [] for name in targets}
            names = list(targets)
            for round_ in range(rounds):
                for name in names if round_ % 2 == 0 else names[::-1]:
                    times[name] += asyncio.run(measure(name, sends))
            medians = {name: statistics.median(values) for name, values in times.items()}
            results[phase] = {
                **{f"median_ms_{name}": round(value * 1000, 3) for name, value in medians.items()},
                "ratio_with_outbox_to_one_datacentre": round(
                    medians["with_outbox"] / medians["one_datacentre"], 3
                ),
                "ratio_with_outbox_to_datacentres_no_outbox": round(
                    medians["with_outbox"] / medians["datacentres_no_outbox"], 3
                ),
            }
        bx.start("relay")
    return results


# --- Outbox overhead (in this process, benchmark database) ------------------------------------


def outbox_overhead(sends: int) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers
    from django.test import override_settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()  # type: ignore[attr-defined]
    settings.MESSAGING_SENDS_PER_MINUTE = 10_000_000
    from accounts.models import User
    from messaging.services.conversations import direct_conversation_ensure
    from messaging.services.sending import message_send
    from messaging.types import OutgoingContent
    from tests.factories import login_ticket, make_friends, make_user
    from wechat_core.models import Campus, DataCenter, OutboxEntry

    here = settings.DATACENTER
    run = uuid.uuid4().hex[:8]
    sender, peer = make_user(email=f"s-{run}@example.com"), make_user(email=f"p-{run}@example.com")
    make_friends(sender, peer)
    chat = direct_conversation_ensure(sender.pk, peer.pk).pk
    ticket = login_ticket(sender)
    elsewhere, _ = DataCenter.objects.get_or_create(code="zz", defaults={"name": "ZZ"})
    campus, _ = Campus.objects.get_or_create(code="zz-a", defaults={"datacenter": elsewhere})
    User.objects.filter(pk=peer.pk).update(home_datacenter=elsewhere, home_campus=campus)
    several = {
        "MULTI_DATACENTER": True,
        "DATACENTERS": {here: {"index": 0, "endpoints": []}, "zz": {"index": 9, "endpoints": []}},
    }
    times: dict[str, list[float]] = {"one": [], "several": []}
    batch = 20
    for round_ in range(max(1, sends // (2 * batch))):
        for mode in ("one", "several") if round_ % 2 == 0 else ("several", "one"):
            with override_settings(**(several if mode == "several" else {})):
                for _ in range(batch):
                    start = time.perf_counter()
                    message_send(ticket=ticket, user_id=sender.pk, conversation_id=chat,
                                 client_msg_id=uuid.uuid4().hex,
                                 content=OutgoingContent(kind="text", text="bench"))  # fmt: skip
                    times[mode].append(time.perf_counter() - start)
    OutboxEntry.objects.all().delete()  # nobody ships the bench database's outbox
    one, many = statistics.median(times["one"]), statistics.median(times["several"])
    return {
        "sends_each": len(times["one"]),
        "median_ms_one_datacentre": round(one * 1000, 3),
        "median_ms_with_outbox": round(many * 1000, 3),
        "ratio": round(many / one, 3),
    }


if __name__ == "__main__":
    main()
