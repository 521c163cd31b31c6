"""Catch-up: a device is offline while 5,000 entries arrive, then syncs them all.

    .venv/bin/python bench/catchup.py [--entries 5000] [--servers daphne,uvicorn] [--synapse]

The entries come from 32 friends' 1:1 chats (Synapse: 32 rooms). The device
then connects and syncs page by page (1,000 entries a page) until it holds its
whole log. Prints JSON: seconds from connecting to holding everything, and
from the first sync request; pages; bytes received; and the same catch-up through
the project's Python client (`python_client_seconds`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from _cluster import Cluster, _befriend, _ticket, _user
from _setup import configure, emit
from _ws import open_link

CHATS = 32


def fill(entries: int) -> tuple[int, str]:
    """A receiver whose log gets `entries` messages from CHATS friends (the
    services, in-process); returns (user id, ticket)."""
    from accounts.tickets import ticket_verify
    from messaging.services.conversations import direct_open
    from messaging.services.sending import message_send
    from messaging.types import OutgoingContent

    receiver = _user("away")
    senders = []
    for _ in range(CHATS):
        sender = _user("friend")
        _befriend(sender, receiver)
        ticket = ticket_verify(token=_ticket(sender))
        chat = direct_open(ticket=ticket, user_id=sender.pk, peer_id=receiver.pk)
        senders.append((sender, ticket, chat.pk))
    for n in range(entries):
        sender, ticket, chat_id = senders[n % CHATS]
        text = f"message {n} from {sender.nickname}, while you were away"
        message_send(
            ticket=ticket,
            user_id=sender.pk,
            conversation_id=chat_id,
            client_msg_id=uuid.uuid4().hex,
            content=OutgoingContent("text", text),
        )
    return receiver.pk, _ticket(receiver)


async def catch_up(url: str, ticket: str, expected_last: int) -> dict[str, Any]:
    started = time.perf_counter()
    link, hello = await open_link(url, ticket)
    first_sync = time.perf_counter()
    key, pages, received, size = 0, 0, 0, 0
    while True:
        await link.send(json.dumps({"type": "sync", "id": pages, "key": key, "limit": 1000}))
        while True:
            raw = await link.recv()
            if '"sync.result"' in raw[:40]:
                break
        page = json.loads(raw)
        pages, size = pages + 1, size + len(raw)
        received += len(page["entries"])
        key = page["key"]
        if not page["more"]:
            break
    done = time.perf_counter()
    await link.close()
    assert key == expected_last == hello["max_seq"], (key, expected_last, hello["max_seq"])
    return {
        "entries": received,
        "seconds_from_connect": round(done - started, 3),
        "seconds_from_first_sync": round(done - first_sync, 3),
        "pages": pages,
        "bytes": size,
    }


async def catch_up_with_client(url: str, ticket: str, expected_last: int) -> float:
    """The same catch-up through the project's client (messaging.client), which also
    queues every entry for the application: what a Python app pays."""
    from messaging.client import ChatClient

    started = time.perf_counter()
    client = ChatClient([url], ticket, sync_limit=1000)
    await client.start()
    while client.key < expected_last:
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - started
    await client.close()
    assert client.entries.qsize() == expected_last
    return round(elapsed, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument("--synapse", action="store_true")
    args = parser.parse_args()
    configure()
    import os

    os.environ["MESSAGING_SENDS_PER_MINUTE"] = "100000000"
    from django.conf import settings

    settings.MESSAGING_SENDS_PER_MINUTE = 10**9
    filled = time.perf_counter()
    user_id, ticket = fill(args.entries)
    fill_seconds = time.perf_counter() - filled
    from wechat_core.sync.models import UserSequence

    last = UserSequence.objects.get(user_id=user_id).last_seq
    results: dict[str, Any] = {
        "log_size": last,
        "fill_messages_per_second": round(args.entries / fill_seconds, 1),
    }
    for server in args.servers.split(","):
        with Cluster(server) as cluster:
            runs = [asyncio.run(catch_up(cluster.ws_url, ticket, last)) for _ in range(3)]
            runs.sort(key=lambda r: r["seconds_from_connect"])
            results[server] = {**runs[1], "runs": [r["seconds_from_connect"] for r in runs]}
            results[server]["python_client_seconds"] = asyncio.run(
                catch_up_with_client(cluster.ws_url, ticket, last)
            )
    if args.synapse:
        from _synapse_workloads import synapse_catchup

        results["synapse"] = asyncio.run(synapse_catchup(args.entries, CHATS))
    emit({"benchmark": "catchup", "entries": args.entries, **results})


if __name__ == "__main__":
    main()
