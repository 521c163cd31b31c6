"""The one way an event enters a conversation: lock, number, store, deliver."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from messaging.exceptions import ConversationNotFound, NotAllowed
from messaging.models import Conversation, MemberRole, Membership, Message, MessageKind
from messaging.replication import event_replicate
from messaging.services.delivery import delivery_schedule
from messaging.store import store
from messaging.store.base import AppendedEvent, delivery_is_inline


def conversation_lock(conversation_id: int) -> Conversation:
    """The conversation, locked until commit: events get their seq one at a time."""
    conversation = (
        Conversation.objects.select_for_update(no_key=True).filter(pk=conversation_id).first()
    )
    if conversation is None:
        raise ConversationNotFound()
    return conversation


def membership_require(
    conversation: Conversation, user_id: int, *, admin: bool = False
) -> Membership:
    """The user's active membership; with `admin`, it must be the owner's or an admin's.
    A non-member is told the conversation does not exist (it is not theirs to know)."""
    membership = (
        Membership.objects.filter(conversation=conversation, user_id=user_id)
        .filter(Q(left_seq__isnull=True))
        .first()
    )
    if membership is None:
        raise ConversationNotFound()
    if admin and membership.role not in (MemberRole.OWNER, MemberRole.ADMIN):
        raise NotAllowed()
    return membership


def event_store(
    *,
    conversation_id: int,
    member_count: int,
    sender_id: int | None,
    kind: str,
    body: dict[str, Any],
    client_msg_id: str | None = None,
) -> AppendedEvent:
    """Give the next seq to a new event of a locked conversation, store it, and
    deliver it: inline for small conversations, else via Celery (services.delivery).
    `member_count` is the conversation's, this event's changes included."""
    appended = store().event_append(
        conversation_id=conversation_id,
        sender_id=sender_id,
        kind=kind,
        body=body,
        client_msg_id=client_msg_id,
        member_count=member_count,
        inline=delivery_is_inline(member_count),
    )
    if not appended.delivered:
        delivery_schedule(conversation_id=conversation_id, member_count=member_count)
    # Members homed in other data centres get it by replay (messaging.replication).
    event_replicate(
        conversation_id=conversation_id,
        message_id=appended.id,
        seq=appended.seq,
        created_at=appended.created_at,
        sender_id=sender_id,
        kind=kind,
        body=body,
        client_msg_id=client_msg_id,
    )
    return appended


def event_append(
    conversation: Conversation,
    *,
    sender_id: int | None,
    kind: MessageKind | str,  # or a registered kind (services.kinds)
    body: dict[str, Any],
    client_msg_id: str | None = None,
) -> Message:
    """event_store for a locked Conversation (its member_count as changed by the
    caller); the conversation's last_seq moves to the event's."""
    appended = event_store(
        conversation_id=conversation.pk,
        member_count=conversation.member_count,
        sender_id=sender_id,
        kind=kind,
        body=body,
        client_msg_id=client_msg_id,
    )
    conversation.last_seq = appended.seq
    message = Message(
        id=appended.id,
        conversation_id=conversation.pk,
        seq=appended.seq,
        sender_id=sender_id,
        kind=kind,
        body=body,
        client_msg_id=client_msg_id,
        created_at=appended.created_at,
    )
    message._state.adding = False  # it is stored: saving it again would update it
    message._state.db = "default"
    return message
