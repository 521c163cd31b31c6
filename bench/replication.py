"""Replication between two data centres (issue 17): lag, catch-up, outbox cost.

    .venv/bin/python bench/replication.py [--rates 10,200] [--seconds 10] \
        [--pairs 10] [--cut-seconds 60] [--sends 300] [--outbox-only]

Two data centres on this machine (tests/support/datacentres.py: two databases
derived from the benchmark database's name, a private Redis each, one uvicorn,
relay and replay each, RabbitMQ on localhost). `--pairs` users homed in `bx`
each chat with a friend homed in `by`, in chats mastered in bx.

- lag: at each rate of `--rates` (messages/s over all pairs, sent through bx's
  HTTP API for `--seconds`), the time from the message's write in bx
  (messaging_message.created_at) to its entry in the recipient's log in by
  (messaging_syncentry.created_at): p50, p99, max. Both clocks are this machine's.
- catch-up: bx's relay is stopped for `--cut-seconds` while bx keeps sending at
  the first rate (the queue unreachable from bx); then restarted: seconds until
  the last message of the cut is in by.
- outbox overhead: in this process, on the benchmark database, `--sends`
  sends alternating in batches between one data centre (no outbox) and several
  (the conversation has a member homed elsewhere: outbox row, NOTIFY, local-only
  delivery), same run; the ratio of median per-send times.
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
    args = parser.parse_args()
    env = configure()
    overhead = outbox_overhead(args.sends)
    if args.outbox_only:
        emit({"bench": "replication", "load_average": os.getloadavg(),
              "outbox_overhead": overhead})  # fmt: skip
        return
    from tests.support.datacentres import datacentres_running

    server_env = env | {
        "LOG_LEVEL": "WARNING",
        "MESSAGING_SENDS_PER_MINUTE": "10000000",
        "MONITORING_GUARD_ENABLED": "false",
        "ADMISSION_ENABLED": "false",
        "FRIEND_REQUESTS_PER_DAY": "1000000",
        "SHAKE_ENGINE_THREAD": "false",
    }
    from devtools.processes import collect_static

    collect_static(server_env)
    with (
        tempfile.TemporaryDirectory() as logs,
        datacentres_running(env=server_env, log_dir=Path(logs), names=("bx", "by")) as (bx, by),
    ):
        chats = asyncio.run(setup_pairs(bx, by, args.pairs))
        results: dict[str, Any] = {}
        for rate in [float(r) for r in args.rates.split(",")]:
            started = time.time()
            sent = asyncio.run(send_at_rate(bx, chats, rate, args.seconds))
            lags = wait_lags(by, chats, started, sent)
            results[f"{rate:g}_per_s"] = {
                "sent": sent,
                "achieved_rate": round(sent / args.seconds, 1),
                "lag_p50_ms": round(quantile(lags, 0.5) * 1000, 1),
                "lag_p99_ms": round(quantile(lags, 0.99) * 1000, 1),
                "lag_max_ms": round(max(lags) * 1000, 1) if lags else None,
            }
        catchup = cut_and_catch_up(bx, by, chats, float(args.rates.split(",")[0]),
                                   args.cut_seconds)  # fmt: skip
    emit(
        {
            "bench": "replication",
            "load_average": os.getloadavg(),
            "pairs": args.pairs,
            "lag": results,
            "catch_up": catchup,
            "outbox_overhead": overhead,
        },
    )


# --- Two data centres -------------------------------------------------------------------------


async def setup_pairs(bx: Any, by: Any, pairs: int) -> list[tuple[dict[str, Any], int]]:
    import httpx

    from tests.factories import device_json

    async with httpx.AsyncClient(timeout=120) as http:

        async def register(dc: Any, name: str) -> dict[str, Any]:
            email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
            body = {"email": email, "password": "a-long-enough-passphrase", "nickname": name,
                    "device": device_json()}  # fmt: skip
            response = await http.post(f"{dc.url}/api/accounts/register", json=body)
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

        chats = []
        for index in range(pairs):
            a, b = await register(bx, f"a{index}"), await register(by, f"b{index}")
            a_auth = {"Authorization": f"Ticket {a['ticket']}"}
            b_auth = {"Authorization": f"Ticket {b['ticket']}"}
            while not bx.query("SELECT 1 FROM accounts_user WHERE id = %s", [b["user"]["id"]]):
                await asyncio.sleep(0.05)
            asked = await http.post(f"{bx.url}/api/contacts/requests", headers=a_auth,
                                    json={"to_user_id": b["user"]["id"]})  # fmt: skip
            asked.raise_for_status()
            request_id = asked.json()["request"]["id"]
            while not by.query("SELECT 1 FROM accounts_friendrequest WHERE id = %s", [request_id]):
                await asyncio.sleep(0.05)
            accepted = await http.post(
                f"{by.url}/api/contacts/requests/{request_id}/accept", headers=b_auth, json={}
            )
            accepted.raise_for_status()
            friends = "SELECT count(*) FROM accounts_friendship WHERE owner_id = %s"
            while bx.query(friends, [b["user"]["id"]])[0][0] < 1:
                await asyncio.sleep(0.05)
            opened = await http.post(f"{bx.url}/api/messaging/conversations/direct",
                                     headers=a_auth, json={"user_id": b["user"]["id"]})  # fmt: skip
            opened.raise_for_status()
            chats.append((a, int(opened.json()["conversation"]["id"])))
        return chats


async def send_at_rate(
    dc: Any, chats: list[tuple[dict[str, Any], int]], rate: float, seconds: float
) -> int:
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
    return sent


LAGS = """
SELECT EXTRACT(EPOCH FROM e.created_at - m.created_at)
FROM messaging_syncentry e JOIN messaging_message m ON m.id = e.message_id
WHERE e.conversation_id = ANY(%s) AND m.created_at >= to_timestamp(%s) AND m.kind = 'text'
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
                     seconds: float) -> dict[str, Any]:  # fmt: skip
    bx.kill("relay")
    started = time.time()
    sent = asyncio.run(send_at_rate(bx, chats, rate, seconds))
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
