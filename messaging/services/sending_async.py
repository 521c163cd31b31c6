"""The websocket's send path on the event loop, with group commit (issue 18).

A text send into a group or a 1:1 chat on PostgreSQL is checked in memory (the
ticket from the ticket cache, client_msg_id, content, the leased rate limit,
an inline spam filter) and handed to this loop's GroupCommitter
(messaging.store.groupcommit), which writes it with the other sends of its batch
in one transaction and answers with its outcome; the link writes the ack. No
worker thread is involved.

Everything else keeps the thread path of services.sending, with the same checks
in the same order and the same errors: attachments, mentions, replies, other
conversation kinds, the portable store (SQLite, the embedded mode), a ticket not
in the cache, a spam filter that does I/O, a send into a conversation mastered in
another data centre (forwarded there: services.sending._forward), and any send
the group commit refused (services.sending.message_send_checked tells the client
why). With data centres the batch writes each send's replication entry itself
(messaging.store.groupcommit).

A check that fails before the database (content, rate, spam) first looks for
the sender's earlier send with the same client_msg_id, as message_send does: a
retry of an acknowledged send is answered with its ack, never an error.
"""

from __future__ import annotations

import weakref
from asyncio import AbstractEventLoop, get_running_loop
from typing import Any

from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from django.conf import settings

from accounts.tickets import ticket_require_cached
from accounts.types import VerifiedTicket
from messaging.exceptions import InvalidContent
from messaging.models import ConversationKind, MessageKind
from messaging.replication import conversation_master
from messaging.services.delivery import conversation_deliver_all
from messaging.services.policies import kind_policy
from messaging.services.sending import (
    CLIENT_MSG_ID,
    message_send,
    message_send_checked,
    previous_send,
    send_precheck,
    sent_count,
)
from messaging.services.spam import spam_check_runs_inline
from messaging.store import store
from messaging.store.base import FANOUT, MESSAGES_DELIVERED
from messaging.store.groupcommit import GroupCommitter, Refused, SendRequest, Written
from messaging.types import OutgoingContent, SendAck
from wechat_core import datacenters
from wechat_core.errors import ServiceError
from wechat_core.sync.log import SYNC_ENTRIES, notify_from_loop

_committers: weakref.WeakKeyDictionary[AbstractEventLoop, GroupCommitter] = (
    weakref.WeakKeyDictionary()
)


def _in_thread(function: Any) -> Any:
    return database_sync_to_async(function, thread_sensitive=False)


def _committed(written: list[Written]) -> None:
    """After a group commit: notify the recipients (each user once, with their
    newest seq) and count what was sent and delivered."""
    newest: dict[int, int] = {}
    for sent in written:
        if sent.duplicate:
            continue
        sent_count(MessageKind.TEXT, sent.conversation_kind)
        if sent.last_seqs:
            MESSAGES_DELIVERED.inc("inline", amount=len(sent.last_seqs))
            FANOUT.observe("inline", value=len(sent.last_seqs))
            SYNC_ENTRIES.inc("message", amount=len(sent.last_seqs))
        for user, seq in sent.last_seqs.items():
            newest[user] = max(seq, newest.get(user, 0))
    notify_from_loop(newest)


def committer() -> GroupCommitter:
    """This event loop's group committer."""
    loop = get_running_loop()
    found = _committers.get(loop)
    if found is None:
        found = _committers[loop] = GroupCommitter(on_committed=_committed)
    return found


def group_commit_applies(content: OutgoingContent, conversation_id: int) -> bool:
    """Whether this send can take the loop's path (see the module)."""
    return (
        settings.MESSAGING_GROUP_COMMIT
        and not settings.EMBEDDED  # its in-memory channel layer publishes from threads
        # Sends into chats mastered elsewhere are forwarded (no database round trip
        # to know: the conversation's id lies in its master's block).
        and (
            not datacenters.enabled() or conversation_master(conversation_id) == datacenters.here()
        )
        and content.kind == MessageKind.TEXT
        and content.attachment_id is None
        and not content.mentions
        and not content.mention_all
        and content.reply_to is None
        and store().name == "postgresql"
        and kind_policy(ConversationKind.DIRECT) is None
        and kind_policy(ConversationKind.GROUP) is None
        and spam_check_runs_inline()
    )


async def message_send_async(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    client_msg_id: str,
    content: OutgoingContent,
) -> SendAck:
    """message_send, on the event loop where it can be (see the module)."""
    arguments: dict[str, Any] = {
        "ticket": ticket,
        "user_id": user_id,
        "conversation_id": conversation_id,
        "client_msg_id": client_msg_id,
        "content": content,
    }
    if not group_commit_applies(content, conversation_id) or not ticket_require_cached(
        ticket, user_id=user_id
    ):
        ack: SendAck = await _in_thread(message_send)(**arguments)
        return ack
    if not CLIENT_MSG_ID.fullmatch(client_msg_id):
        raise InvalidContent("client_msg_id must be 1-64 letters, digits or . _ : -")
    try:
        send_precheck(
            ticket=ticket, user_id=user_id, conversation_id=conversation_id, content=content
        )
    except ServiceError:
        earlier: SendAck | None = await _in_thread(previous_send)(
            user_id=user_id, client_msg_id=client_msg_id, conversation_id=conversation_id
        )
        if earlier is not None:
            return earlier
        raise
    body = {"text": content.text} if content.text else {}
    outcome = await committer().submit(
        SendRequest(user_id, conversation_id, client_msg_id, content.kind, body)
    )
    if isinstance(outcome, Refused):
        checked: SendAck = await _in_thread(message_send_checked)(**arguments)
        return checked
    if not outcome.delivered:
        # Earlier events of the conversation are still waiting for delivery (a
        # member's join delivered by Celery): deliver them and this one now, as
        # delivery_schedule does for a conversation delivered inline.
        await _in_thread(conversation_deliver_all)(conversation_id=conversation_id)
    return SendAck(
        outcome.message_id,
        outcome.conversation_id,
        outcome.seq,
        client_msg_id,
        outcome.created_at,
        duplicate=outcome.duplicate,
    )
