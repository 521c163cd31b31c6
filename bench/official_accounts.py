"""Official accounts: the webhook round trip and a mass send.

    .venv/bin/python bench/official_accounts.py [--rate 20] [--seconds 10] [--followers 10000]

1. Round trip: users write to an account whose developer server (WeRoBot, in
   its own process) echoes; latency runs from the send frame leaving the user's
   websocket until the echo, pushed by the webhook worker and relayed into the
   chat, is read from the user's sync. Prints p50/p95/p99, and the same for each
   stage of the trip, from the rows it wrote (message, push attempt, reply).
2. Mass send: `message/mass/sendall` to every follower of an account with
   `--followers` followers, through the real /cgi-bin/ API and Celery, timed
   from the API call to the job's finish; prints messages per second.

Production layout: uvicorn (`--server daphne` for the other), a Celery worker
(4 threads) on the `webhook` queue,
PostgreSQL and Redis, all on loopback. Followers stay in the benchmark database
between runs (made once, with a fast password hasher).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _setup import ROOT, configure, emit
from _ws import open_link, percentiles

TOKEN = "benchtoken123"


def start_devserver() -> tuple[subprocess.Popen[bytes], str]:
    from devtools.processes import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "_devserver.py"), str(port), TOKEN],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process, f"http://127.0.0.1:{port}/wechat"


def account_with_followers(name: str, count: int, tickets: list[str]) -> Any:
    """The account `name` with the first `count` idle users following it."""
    from accounts.tickets import ticket_verify
    from publicplatform.models import Follower, OfficialAccount
    from publicplatform.services.accounts import account_create
    from publicplatform.services.followers import account_follow

    account = OfficialAccount.objects.filter(name=name).first()
    if account is None:
        account = account_create(name=name, owner_id=None).account
    have = Follower.objects.filter(account=account, subscribed=True).count()
    for token in tickets[have:count]:
        ticket = ticket_verify(token=token)
        account_follow(ticket=ticket, user_id=ticket.user_id, account_id=account.pk)
    return account


async def roundtrip(
    ws_url: str, members: list[tuple[str, int]], rate: float, seconds: float, warmup: int
) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """Latencies of the echoes, and (sent at, read at) in wall-clock ns for each."""
    echoes: list[tuple[int, int]] = []
    links = [await open_link(ws_url, ticket) for ticket, _ in members]
    stop = asyncio.Event()

    async def receive(link: Any, hello: dict[str, Any]) -> None:
        key = wanted = hello["max_seq"]
        while not stop.is_set():
            frame = json.loads(await link.recv())
            if frame.get("type") == "notify":
                wanted = max(wanted, frame["seq"])
            # A notify that comes while a sync is in flight is kept, not dropped:
            # dropping it left that echo unread until the link's next message.
            while wanted > key:
                await link.send(json.dumps({"type": "sync", "id": "s", "key": key, "limit": 500}))
                while (page := json.loads(await link.recv())).get("type") != "sync.result":
                    if page.get("type") == "notify":
                        wanted = max(wanted, page["seq"])
                now = time.time_ns()
                for entry in page["entries"]:
                    text = (entry.get("message") or {}).get("body", {}).get("text", "")
                    if text.startswith("echo: ") and text.endswith(" x"):
                        echoes.append((int(text.split(" ")[1]), now))
                key = max(key, page["key"])

    async def send_one(link: Any, conversation: int, mark: str) -> None:
        frame = {
            "type": "send",
            "id": f"x{time.time_ns()}",
            "conversation": conversation,
            "client_msg_id": f"w{time.time_ns()}",
            "content": {"text": f"{time.time_ns()} {mark}"},
        }
        await link.send(json.dumps(frame))

    async def send(link: Any, conversation: int, offset: float) -> None:
        interval = len(members) / rate
        await asyncio.sleep(offset)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            tick = time.perf_counter()
            await send_one(link, conversation, "x")
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))

    # Each link both sends (acks are skipped) and receives its echoes.
    receivers = [asyncio.create_task(receive(link, hello)) for link, hello in links]
    # Warm-up, not measured: the first pushes start the worker's threads, their
    # database connections and the developer server's first requests (up to a
    # few hundred ms, once per process); the measurement is of the steady state.
    for _ in range(warmup):
        for (link, _hello), (_ticket, conversation) in zip(links, members, strict=True):
            await send_one(link, conversation, "warm-up")
            await asyncio.sleep(1 / rate)
    await asyncio.sleep(2.0 if warmup else 0.0)
    await asyncio.gather(
        *(
            send(link, conv, i / rate)
            for i, ((link, _), (_, conv)) in enumerate(zip(links, members, strict=True))
        )
    )
    await asyncio.sleep(2.0)
    stop.set()
    for task in receivers:
        task.cancel()
    for link, _ in links:
        await link.close()
    sent = int(rate * seconds)
    latencies = [(read - sent_at) / 1e9 for sent_at, read in echoes]
    return {"sent_about": sent, "echoes": len(echoes), **percentiles(latencies)}, echoes


def stages(echoes: list[tuple[int, int]]) -> dict[str, dict[str, float]]:
    """Where each echo's time went, from the rows the round trip wrote (message,
    push, first attempt, reply) between the client's two clock readings."""
    from messaging.models import Message
    from publicplatform.models import WebhookAttempt

    sent_at = {f"{sent} x": (sent, read) for sent, read in echoes}
    asked = dict(
        Message.objects.filter(body__text__in=list(sent_at)).values_list("body__text", "id")
    )
    rows = WebhookAttempt.objects.filter(number=1, delivery__msg_id__in=list(asked.values()))
    attempts = {
        r["delivery__msg_id"]: r
        for r in rows.values(
            "delivery__msg_id", "started_at", "latency_ms", "delivery__reply_message_id"
        )
    }
    created = dict(
        Message.objects.filter(
            pk__in=[a["delivery__reply_message_id"] for a in attempts.values()]
            + list(asked.values())
        ).values_list("pk", "created_at")
    )
    # Messages carry their transaction's start time (PostgreSQL now()), so the send's
    # and the reply's writes and commits fall in the stage after their start.
    names = (
        "send frame → send transaction",
        "→ first attempt starts (commit, queue, worker)",
        "developer server (HTTP round trip)",
        "answer → reply transaction",
        "→ echo read from sync (write, commit, notify, sync)",
    )
    samples: dict[str, list[float]] = {name: [] for name in names}
    for text, message_id in asked.items():
        attempt = attempts.get(message_id)
        if attempt is None or attempt["delivery__reply_message_id"] not in created:
            continue
        sent, read = (ns / 1e9 for ns in sent_at[text])
        stored = created[message_id].timestamp()  # the transaction's start
        started = attempt["started_at"].timestamp()
        answered = started + attempt["latency_ms"] / 1000
        replied = created[attempt["delivery__reply_message_id"]].timestamp()
        values = (
            stored - sent,
            started - stored,
            answered - started,
            replied - answered,
            read - replied,
        )
        for name, value in zip(names, values, strict=True):
            samples[name].append(value)
    return {name: percentiles(values) for name, values in samples.items()}


def mass_send(base_url: str, account: Any, secret: str) -> dict[str, Any]:
    from publicplatform.models import MassJob

    with httpx.Client(timeout=30) as http:
        token = http.get(
            f"{base_url}/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": account.appid,
                "secret": secret,
            },
        ).json()["access_token"]
        started = time.perf_counter()
        body = json.dumps(
            {
                "filter": {"is_to_all": True},
                "msgtype": "text",
                "text": {"content": f"bench {time.time_ns()}"},
            }
        )
        answer = http.post(
            f"{base_url}/cgi-bin/message/mass/sendall", params={"access_token": token}, content=body
        ).json()
    job_id = answer["msg_id"]
    while True:
        job = MassJob.objects.get(pk=job_id)
        if job.status == "finished":
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    return {
        "followers": job.total_count,
        "sent": job.sent_count,
        "errors": job.error_count,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(job.sent_count / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--followers", type=int, default=10000)
    parser.add_argument("--skip-mass", action="store_true", help="only the round trip")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument(
        "--warmup", type=int, default=2, help="unmeasured messages per user before timing"
    )
    args = parser.parse_args()
    env = configure()
    sys.path.insert(0, str(ROOT))
    from _cluster import make_idle_tickets

    from devtools.processes import collect_static, start_asgi_server, start_celery_worker
    from publicplatform.models import Follower
    from publicplatform.services.accounts import account_secret_reset, account_server_configure

    # A round-trip-only run needs only its users (tickets are issued fresh each run).
    tickets = make_idle_tickets(args.users if args.skip_mass else max(args.followers, args.users))
    echo = account_with_followers("bench-echo", args.users, tickets)
    mass = None if args.skip_mass else account_with_followers("bench-mass", args.followers, tickets)
    import redis

    # Nothing left over from earlier runs in the worker's queue.
    redis.Redis.from_url(env.get("CELERY_BROKER_URL") or env["REDIS_URL"]).delete("webhook")
    devserver, url = start_devserver()
    env = {
        **env,
        "LOG_LEVEL": "WARNING",
        "MESSAGING_SENDS_PER_MINUTE": "10000000",
        "PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS": "127.0.0.0/8",
    }
    log_dir = Path(tempfile.mkdtemp(prefix="bench-official-"))
    collect_static(env)
    server = start_asgi_server(log_dir=log_dir, env=env, server=args.server)
    worker = start_celery_worker(
        log_dir=log_dir, env=env, queues="webhook,default", name="official"
    )
    try:
        from django.conf import settings

        settings.PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS = ["127.0.0.0/8"]
        account_server_configure(
            account=echo, server_url=url, token=TOKEN, encoding_aes_key="", mode="plain"
        )
        if mass is not None:
            account_server_configure(
                account=mass, server_url="", token=TOKEN, encoding_aes_key="", mode="plain"
            )
        members = list(
            Follower.objects.filter(account=echo, subscribed=True)
            .order_by("user_id")
            .values_list("user_id", "conversation_id")[: args.users]
        )
        by_user = {int(t.split(".")[1]): t for t in tickets}  # ticket id → token; map below
        from accounts.models import Ticket

        owner = dict(Ticket.objects.filter(pk__in=by_user).values_list("user_id", "pk"))
        linked = [(by_user[owner[user]], conv) for user, conv in members]
        trip, echoes = asyncio.run(
            roundtrip(
                server.url.replace("http", "ws") + "/ws/sync",
                linked,
                args.rate,
                args.seconds,
                args.warmup,
            )
        )
        trip["stages"] = stages(echoes)
        blast = (
            {} if mass is None else mass_send(server.url, mass, account_secret_reset(account=mass))
        )
    finally:
        worker.stop()
        server.stop()
        devserver.terminate()
    emit(
        {
            "benchmark": "official_accounts",
            "webhook_roundtrip": {
                "rate_per_second": args.rate,
                "seconds": args.seconds,
                "users": args.users,
                "server": args.server,
                "warmup_messages_per_user": args.warmup,
                **trip,
            },
            "mass_send": blast,
        }
    )


if __name__ == "__main__":
    main()
