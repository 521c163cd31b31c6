"""Sends over real websockets take the event loop's path and its group commit
(messaging.services.sending_async), and keep the SYNC guarantees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.db import connection

from devtools.processes import ServerProcess
from messaging.models import Message
from messaging.services.conversations import group_create
from tests.factories import befriend_all, login_session, make_user
from tests.support.chat import client_for, run
from wechat_core.sync.models import SyncEntry

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

MEMBERS = 6
EACH = 4


def test_concurrent_sends__into_one_group__acked_in_one_order_every_log_alike(
    asgi_servers: list[ServerProcess],
) -> None:
    # given: a group of six friends, each on their own websocket to one server
    users = [make_user(nickname=f"M{n}") for n in range(MEMBERS)]
    befriend_all(users[0], users[1:])
    sessions = [login_session(user) for user in users]
    group = group_create(
        ticket=sessions[0].ticket,
        user_id=users[0].pk,
        name="together",
        member_ids=[user.pk for user in users[1:]],
    ).pk

    async def scenario() -> list[dict[str, Any]]:
        clients = [client_for(session, asgi_servers[:1]) for session in sessions]
        for client in clients:
            await client.__aenter__()
        try:
            # when: everyone sends at once, several times, and retries one send
            async def member(index: int) -> list[dict[str, Any]]:
                acks = []
                for n in range(EACH):
                    acks.append(
                        await clients[index].send(
                            group, {"kind": "text", "text": f"{index}/{n}"}, client_msg_id=f"m{n}"
                        )
                    )
                again = await clients[index].send(
                    group, {"kind": "text", "text": "again"}, client_msg_id="m0"
                )
                assert (again["id"], again["duplicate"]) == (acks[0]["id"], True)
                return acks

            found = await asyncio.gather(*(member(index) for index in range(MEMBERS)))
            return [ack for acks in found for ack in acks]
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)

    acks = run(scenario())

    # then: the server wrote them through the group committer's own connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'wechat-groupcommit' AND datname = current_database()"
        )
        assert cursor.fetchone()[0] >= 1
    # every send got its own seq, none twice, no gap after the group's creation
    seqs = sorted(ack["seq"] for ack in acks)
    assert len(acks) == MEMBERS * EACH
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert not any(ack["duplicate"] for ack in acks)
    assert Message.objects.filter(conversation_id=group, kind="text").count() == len(acks)
    # and every member's log lists the messages in the group's one order
    by_seq = [ack["id"] for ack in sorted(acks, key=lambda ack: ack["seq"])]
    for user in users:
        logged = list(
            SyncEntry.objects.filter(user_id=user.pk, message_id__in=by_seq)
            .order_by("seq")
            .values_list("message_id", flat=True)
        )
        assert logged == by_seq
