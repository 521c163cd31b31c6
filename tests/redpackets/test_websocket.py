"""Red packets over the SYNC websocket (docs/protocol.md): `redpacket.send` and
`redpacket.grab` / `redpacket.open` frames, their acks and error frames, and the
bubble's `message_update` entries reaching the members' devices."""

from __future__ import annotations

import asyncio
import threading
from contextlib import AsyncExitStack
from typing import Any

import pytest
from django.db import connection, transaction

from devtools.processes import ServerProcess
from redpackets import gate
from redpackets.models import Packet
from redpackets.services.sending import packet_send
from tests.redpackets.conftest import Chat, group_chat, packet_request
from tests.support.chat import Raw, raw_connect, run
from wechat_core.cacheclient import cache_redis

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


async def _frames(
    server: ServerProcess, chat: Chat, script: list[tuple[int, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Each (member index, frame) sent in order on that member's link; the answers."""
    answers = []
    for index, frame in script:
        async with raw_connect(server, chat.sessions[index].token) as ws:
            link = Raw(ws)
            assert (await link.recv())["type"] == "hello"
            answers.append(await link.reply_to(frame))
    return answers


def _send_frame(chat: Chat, **fields: Any) -> dict[str, Any]:
    return {
        "type": "redpacket.send", "id": "s1", "conversation": chat.conversation,
        "client_id": "ws-1", "kind": "lucky", "total_amount": 600, "shares": 2,
        "greeting": "Good luck", **fields,
    }  # fmt: skip


def test_frames__send_then_grab_and_open__are_acked_with_the_packet_and_the_share(
    asgi_servers: list[ServerProcess],
) -> None:
    chat = group_chat(3, balance=1000)
    sent, retried = run(_frames(asgi_servers[0], chat, [(0, _send_frame(chat))] * 2))
    packet = sent["packet"]
    grabbed, opened, again = run(
        _frames(asgi_servers[0], chat, [
            (1, {"type": "redpacket.grab", "id": "g1", "packet": packet}),
            (2, {"type": "redpacket.open", "id": "g2", "packet": packet}),
            (1, {"type": "redpacket.grab", "id": "g3", "packet": packet}),
        ]),
    )  # fmt: skip
    assert (sent["type"], sent["id"], sent["duplicate"], retried["duplicate"]) == (
        "redpacket.send.ack", "s1", False, True,
    )  # fmt: skip
    assert retried["packet"] == packet
    assert sent["cover"] == {"id": "default", "title": "Red packet", "surname": None}
    assert (grabbed["type"], grabbed["id"], grabbed["outcome"]) == (
        "redpacket.grab.ack", "g1", "grabbed",
    )  # fmt: skip
    assert (opened["outcome"], opened["state"]) == ("grabbed", "finished")
    assert grabbed["amount"] + opened["amount"] == 600
    assert (again["outcome"], again["amount"]) == ("already", grabbed["amount"])


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"total_amount": 5000}, "insufficient_funds"),
        ({"shares": 0}, "redpacket_invalid"),
        ({"total_amount": "600"}, "invalid"),
        ({"conversation": 999_999_999}, "conversation_not_found"),
    ],
)
def test_send_frame__refused__answers_an_error_frame_with_the_code(
    asgi_servers: list[ServerProcess], fields: dict[str, Any], code: str
) -> None:
    chat = group_chat(3, balance=1000)
    (answer,) = run(_frames(asgi_servers[0], chat, [(0, _send_frame(chat, **fields))]))
    assert (answer["type"], answer["id"], answer["code"]) == ("error", "s1", code)


def test_grab_frame__of_an_unknown_packet__is_redpacket_not_found(
    asgi_servers: list[ServerProcess],
) -> None:
    chat = group_chat(2)
    (answer,) = run(
        _frames(asgi_servers[0], chat, [(1, {"type": "redpacket.grab", "id": 7, "packet": 1})])
    )
    assert (answer["type"], answer["id"], answer["code"]) == ("error", 7, "redpacket_not_found")


def test_sync__after_a_grab__carries_the_message_update_entry_to_the_grabber(
    asgi_servers: list[ServerProcess],
) -> None:
    chat = group_chat(3, balance=1000)
    (sent,) = run(_frames(asgi_servers[0], chat, [(0, _send_frame(chat))]))
    grab = {"type": "redpacket.grab", "id": "g", "packet": sent["packet"]}
    sync = {"type": "sync", "id": "k", "key": 0, "limit": 100}
    grabbed, page = run(_frames(asgi_servers[1], chat, [(1, grab), (1, sync)]))
    updates = [e for e in page["entries"] if e["kind"] == "message_update"]
    assert updates[-1]["conversation"] == chat.conversation
    assert updates[-1]["payload"]["message"] == sent["message"]
    assert updates[-1]["payload"]["redpacket"]["amount"] == grabbed["amount"]
    messages = [e["message"] for e in page["entries"] if e["message"]]
    assert messages[-1]["kind"] == "redpacket"
    assert messages[-1]["body"]["packet_id"] == sent["packet"]


def test_grab__losers_are_answered_while_winners_wait_on_the_packets_row_lock(
    asgi_servers: list[ServerProcess],
) -> None:
    """More winners than the server has worker threads, all stuck behind the
    packet's row lock (held here): the gate's losers are answered all the same,
    because winners finish one at a time per packet, in threads of their own."""
    # given: a packet of 30 shares in a group of 36 (30 winners, 5 losers)
    winners, losers = 30, 5
    chat = group_chat(1 + winners + losers, balance=10_000)
    owner = chat.sender
    sent = packet_send(
        ticket=owner.ticket, user_id=owner.user.pk,
        request=packet_request(chat, total_amount=3000, shares=winners),
    )  # fmt: skip
    packet = sent.packet
    left_key = gate._keys(packet)[0]
    client = cache_redis()
    assert client is not None

    async def grab_all() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with AsyncExitStack() as stack:
            links = []
            for session in chat.sessions[1:]:
                link = Raw(
                    await stack.enter_async_context(raw_connect(asgi_servers[0], session.token))
                )
                assert (await link.recv())["type"] == "hello"
                links.append(link)
            for n, link in enumerate(links[:winners]):
                await link.send({"type": "redpacket.grab", "id": f"w{n}", "packet": packet.pk})
            # every winner has passed the gate (and waits on the row lock)
            while client.get(left_key) != b"0":
                await asyncio.sleep(0.05)
            lost = [
                await link.reply_to({"type": "redpacket.grab", "id": "l", "packet": packet.pk}, 30)
                for link in links[winners:]
            ]
            lock.release()
            won = [await _reply(link, f"w{n}") for n, link in enumerate(links[:winners])]
            return lost, won

    # when: the packet's row is locked until the losers have their answers
    lock = _RowLock(packet.pk)
    try:
        lost, won = run(grab_all(), timeout=120)
    finally:
        lock.release()
    # then
    assert [answer["outcome"] for answer in lost] == ["finished"] * losers
    assert [answer["outcome"] for answer in won] == ["grabbed"] * winners
    assert sum(answer["amount"] for answer in won) == 3000


async def _reply(link: Raw, request_id: str) -> dict[str, Any]:
    while True:
        reply = await link.recv(60)
        if reply.get("id") == request_id:
            return reply


class _RowLock:
    """The packet's row locked by a connection of its own, in a thread, until released."""

    def __init__(self, packet_id: int) -> None:
        self._locked, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(packet_id,), daemon=True)
        self._thread.start()
        assert self._locked.wait(30)

    def _hold(self, packet_id: int) -> None:
        try:
            with transaction.atomic():
                Packet.objects.select_for_update().get(pk=packet_id)
                self._locked.set()
                self._done.wait(120)
        finally:
            connection.close()

    def release(self) -> None:
        self._done.set()
