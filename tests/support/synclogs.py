"""A user's sync log holding every kind of entry: what the sync-page tests compare
the wire encoding, the loop path and the Python selector on."""

from __future__ import annotations

import uuid
from typing import Any

from messaging.services.conversations import direct_open, group_create, group_update
from messaging.services.sending import conversation_read, message_recall, message_send
from messaging.types import OutgoingContent
from tests.factories import Session, login_session, make_friends, make_user


def send(session: Session, conversation: int, text: str, **extra: Any) -> Any:
    return message_send(
        ticket=session.ticket, user_id=session.user.pk, conversation_id=conversation,
        client_msg_id=uuid.uuid4().hex, content=OutgoingContent("text", text, **extra),
    )  # fmt: skip


def busy_log() -> Session:
    """Bob's session, his log holding contact notices, 1:1 and group messages (own and
    others'), a quote, a mention, a recall, a system notice and a read position."""
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
