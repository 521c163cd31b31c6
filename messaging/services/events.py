"""The one way an event enters a conversation: lock, number, store, deliver."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from messaging.exceptions import ConversationNotFound, NotAllowed
from messaging.models import Conversation, MemberRole, Membership, Message, MessageKind
from messaging.services.delivery import delivery_schedule


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


def event_append(
    conversation: Conversation,
    *,
    sender_id: int | None,
    kind: MessageKind,
    body: dict[str, Any],
    client_msg_id: str | None = None,
) -> Message:
    """Give the next seq to a new event of a locked conversation, store it, and
    deliver it (inline or via Celery, see services.delivery)."""
    conversation.last_seq += 1
    conversation.save(update_fields=["last_seq", "member_count"])
    message = Message.objects.create(
        conversation=conversation,
        seq=conversation.last_seq,
        sender_id=sender_id,
        kind=kind,
        body=body,
        client_msg_id=client_msg_id,
    )
    delivery_schedule(conversation_id=conversation.pk, member_count=conversation.member_count)
    return message
