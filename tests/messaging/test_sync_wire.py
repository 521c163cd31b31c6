"""The wire encoding of sync pages (PostgreSQL builds the JSON) says exactly what the
Python selector says, entry for entry, for every kind of entry."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from messaging.selectors import sync_read, sync_read_wire
from messaging.services.conversations import direct_open, group_create, group_update
from messaging.services.sending import conversation_read, message_recall, message_send
from messaging.types import OutgoingContent
from tests.factories import login_session, make_friends, make_user

pytestmark = pytest.mark.django_db


def send(session: Any, conversation: int, text: str, **extra: Any) -> Any:
    return message_send(
        ticket=session.ticket, user_id=session.user.pk, conversation_id=conversation,
        client_msg_id=uuid.uuid4().hex, content=OutgoingContent("text", text, **extra),
    )  # fmt: skip


@pytest.fixture
def busy_log() -> Any:
    """Bob's log with contact notices, 1:1 and group messages (own and others'),
    a quote, a mention, a recall, a system notice and a read position."""
    alice, bob, carol = make_user(nickname="Alice"), make_user(nickname="Bob"), make_user()
    make_friends(alice, bob)
    make_friends(bob, carol)
    a, b = login_session(alice), login_session(bob)
    chat = direct_open(ticket=a.ticket, user_id=alice.pk, peer_id=bob.pk).pk
    first = send(a, chat, "hi Bob")
    send(b, chat, 'quoting "you" \u2014 \U0001f600', reply_to=first.message_id)
    recalled = send(a, chat, "oops")
    message_recall(ticket=a.ticket, user_id=alice.pk, message_id=recalled.message_id)
    group = group_create(ticket=b.ticket, user_id=bob.pk, name="G", member_ids=[alice.pk, carol.pk])
    send(b, group.pk, "@Alice", mentions=(alice.pk,))
    group_update(ticket=b.ticket, user_id=bob.pk, conversation_id=group.pk, announcement="Rules")
    conversation_read(ticket=b.ticket, user_id=bob.pk, conversation_id=chat, seq=2)
    return b


@pytest.mark.parametrize(("since", "limit"), [(0, 1000), (0, 3), (4, 5), (1000, 10)])
def test_wire_page__equals_the_python_page(busy_log: Any, since: int, limit: int) -> None:
    b = busy_log
    python = sync_read(ticket=b.ticket, user_id=b.user.pk, since=since, limit=limit)
    wire = sync_read_wire(ticket=b.ticket, user_id=b.user.pk, since=since, limit=limit)
    assert json.loads(wire.entries_json) == python.entries
    assert (wire.key, wire.more) == (python.key, python.more)
    assert wire.conversations == python.conversations


def test_wire_page__for_an_old_client__is_the_adapted_python_page(busy_log: Any) -> None:
    b = busy_log
    old = sync_read_wire(
        ticket=b.ticket, user_id=b.user.pk, since=0, limit=100, client_version="1.0.0"
    )
    entries = json.loads(old.entries_json)
    adapted = [e["message"] for e in entries if e["message"] and "adapted_from" in e["message"]]
    assert adapted
    assert all(m["kind"] == "text" for m in adapted)
