"""Reads of the messaging app: sync pages, conversations, history, attachments.

Every function takes the verified ticket and the id of the user whose data it
reads, and calls ticket_require first.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.exceptions import UserNotFound
from accounts.models import User
from accounts.selectors import user_profile_get
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging import storage
from messaging.compat import adapt_group_conversation, adapt_group_message, supports_groups
from messaging.exceptions import AttachmentNotFound, ConversationNotFound
from messaging.models import (
    Attachment,
    Conversation,
    ConversationKind,
    Membership,
    Message,
    MessageKind,
    SyncEntry,
    UserSequence,
)
from messaging.types import SyncPage, WireSyncPage

CONTENT_KINDS = [MessageKind.TEXT, MessageKind.IMAGE, MessageKind.FILE]
MESSAGE_FIELDS = (
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "kind",
    "body",
    "recalled_at",
    "created_at",
    "client_msg_id",
)


def message_view(row: dict[str, Any], viewer_id: int | None = None) -> dict[str, Any]:
    """A message as clients see it; a recalled message keeps no content. The sender
    also sees its client_msg_id, to match the entry with its outbox."""
    recalled = row["recalled_at"] is not None
    own = viewer_id is not None and row["sender_id"] == viewer_id
    return {
        "id": row["id"],
        "conversation": row["conversation_id"],
        "seq": row["seq"],
        "sender": row["sender_id"],
        "kind": row["kind"],
        "body": {} if recalled else row["body"],
        "recalled": recalled,
        "created_at": row["created_at"].astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "client_msg_id": row["client_msg_id"] if own else None,
    }


def conversation_view(row: Mapping[str, Any], viewer_id: int) -> dict[str, Any]:
    peer = None
    if row["kind"] == ConversationKind.DIRECT and row["direct_key"]:
        low, high = (int(part) for part in row["direct_key"].split(":"))
        peer = high if low == viewer_id else low
    return {
        "id": row["id"],
        "kind": row["kind"],
        "name": row["name"],
        "peer": peer,
        "member_count": row["member_count"],
        "last_seq": row["last_seq"],
    }


def conversation_view_of(conversation: Conversation, viewer_id: int) -> dict[str, Any]:
    return conversation_view(
        {
            "id": conversation.pk,
            "kind": conversation.kind,
            "name": conversation.name,
            "member_count": conversation.member_count,
            "last_seq": conversation.last_seq,
            "direct_key": conversation.direct_key,
        },
        viewer_id,
    )


def sync_max_seq(*, ticket: VerifiedTicket, user_id: int) -> int:
    ticket_require(ticket, user_id=user_id)
    last = UserSequence.objects.filter(user_id=user_id).values_list("last_seq", flat=True).first()
    return int(last or 0)


def device_client_version(*, ticket: VerifiedTicket) -> str:
    # The ticket carries its device's version: a device that reports a new one
    # logs in again and gets a new ticket (accounts.services.devices), so no query.
    return ticket.client_version or "0.0.0"


def account_is_system(*, user_id: int) -> bool:
    """Whether the user is a system account (MESSAGING_SYSTEM_ACCOUNTS): the service
    speaking, e.g. the monitoring account writing alerts to operators."""
    try:
        wechat_id = user_profile_get(user_id=user_id).wechat_id
    except UserNotFound:
        return False
    return (wechat_id or "").lower() in settings.MESSAGING_SYSTEM_ACCOUNTS


def _conversations(ids: Iterable[int], viewer_id: int) -> dict[int, dict[str, Any]]:
    return {
        row["id"]: conversation_view(row, viewer_id)
        for row in Conversation.objects.filter(id__in=set(ids)).values(
            "id", "kind", "name", "member_count", "last_seq", "direct_key"
        )
    }


def sync_read(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    since: int,
    limit: int,
    client_version: str | None = None,
) -> SyncPage:
    """The user's entries after `since`, oldest first, at most `limit` of them.

    Each message entry carries the message; the page also describes every
    conversation it mentions. Devices too old for groups get groups adapted
    (see messaging.compat). An entry is {"seq", "kind", "conversation",
    "message", "payload"}, the last three null when they do not apply.
    """
    ticket_require(ticket, user_id=user_id)
    limit = max(1, min(limit, settings.MESSAGING_SYNC_MAX_LIMIT))
    rows = list(
        SyncEntry.objects.filter(user_id=user_id, seq__gt=since)
        .order_by("seq")
        .values("seq", "kind", "conversation_id", "message_id", "payload")[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    messages = messages_by_id(
        [row["message_id"] for row in rows if row["message_id"] is not None], user_id
    )
    conversations = _conversations(
        (row["conversation_id"] for row in rows if row["conversation_id"]), user_id
    )
    entries = [
        {
            "seq": row["seq"],
            "kind": row["kind"],
            "conversation": row["conversation_id"],
            "message": messages.get(row["message_id"]) if row["message_id"] else None,
            "payload": row["payload"],
        }
        for row in rows
    ]
    version = client_version if client_version is not None else device_client_version(ticket=ticket)
    if not supports_groups(version):
        _adapt_for_legacy(entries, conversations)
    key = rows[-1]["seq"] if rows else since
    return SyncPage(entries=entries, key=key, more=more, conversations=conversations)


def sync_read_wire(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    since: int,
    limit: int,
    client_version: str | None = None,
) -> WireSyncPage:
    """sync_read for the wire: the entries already encoded as JSON. On PostgreSQL,
    for current clients, PostgreSQL encodes them (messaging.storage.sync_page)."""
    ticket_require(ticket, user_id=user_id)
    version = client_version if client_version is not None else device_client_version(ticket=ticket)
    if storage.available() and supports_groups(version):
        limit = max(1, min(limit, settings.MESSAGING_SYNC_MAX_LIMIT))
        page = storage.sync_page(user_id, since, limit)
        return WireSyncPage(
            entries_json=page.entries_json,
            key=page.last_seq if page.last_seq is not None else since,
            more=page.more,
            conversations=_conversations(page.conversation_ids, user_id),
        )
    python_page = sync_read(
        ticket=ticket, user_id=user_id, since=since, limit=limit, client_version=version
    )
    return WireSyncPage(
        entries_json=json.dumps(python_page.entries, separators=(",", ":")),
        key=python_page.key,
        more=python_page.more,
        conversations=python_page.conversations,
    )


def _people_in(message: dict[str, Any]) -> set[int]:
    body = message["body"]
    ids = {message["sender"], body.get("by"), body.get("user"), *body.get("users", [])}
    return {int(user_id) for user_id in ids if user_id}


def _adapt_for_legacy(
    entries: list[dict[str, Any]], conversations: dict[int, dict[str, Any]]
) -> None:
    groups = {cid for cid, conv in conversations.items() if conv["kind"] == ConversationKind.GROUP}
    group_messages = [
        entry for entry in entries
        if entry.get("message") and entry["message"]["conversation"] in groups
    ]  # fmt: skip
    if not group_messages:
        return
    people = set().union(*(_people_in(entry["message"]) for entry in group_messages))
    names = dict(User.objects.filter(pk__in=people).values_list("pk", "nickname"))
    for entry in group_messages:
        entry["message"] = adapt_group_message(entry["message"], names)
    for cid in groups:
        conversations[cid] = adapt_group_conversation(conversations[cid])


def conversation_list(*, ticket: VerifiedTicket, user_id: int) -> QuerySet[Membership]:
    """The user's conversations, most recently active first, each annotated with
    `unread` (messages from others after the read position) and `last_message_id`."""
    ticket_require(ticket, user_id=user_id)
    unread = (
        Message.objects.filter(
            conversation_id=OuterRef("conversation_id"),
            seq__gt=OuterRef("read_seq"),
            kind__in=CONTENT_KINDS,
        )
        .exclude(sender_id=user_id)
        .order_by()
        .values("conversation_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    last_message = Message.objects.filter(conversation_id=OuterRef("conversation_id")).order_by(
        "-seq"
    )
    return (
        Membership.objects.filter(user_id=user_id, left_seq__isnull=True)
        .select_related("conversation")
        .annotate(
            unread=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0)),
            last_message_id=Subquery(last_message.values("id")[:1]),
            last_activity=Subquery(last_message.values("created_at")[:1]),
        )
        .order_by("-last_activity", "-conversation_id")
    )


def messages_by_id(ids: list[int], viewer_id: int | None = None) -> dict[int, dict[str, Any]]:
    return {
        row["id"]: message_view(row, viewer_id)
        for row in Message.objects.filter(id__in=ids).values(*MESSAGE_FIELDS)
    }


def conversation_get(
    *, ticket: VerifiedTicket, user_id: int, conversation_id: int
) -> tuple[Conversation, Membership, list[Membership]]:
    """A conversation the user is in, the user's membership, and the active members."""
    ticket_require(ticket, user_id=user_id)
    membership = (
        Membership.objects.select_related("conversation")
        .filter(conversation_id=conversation_id, user_id=user_id, left_seq__isnull=True)
        .first()
    )
    if membership is None:
        raise ConversationNotFound()
    members = list(
        Membership.objects.filter(conversation_id=conversation_id, left_seq__isnull=True)
        .select_related("user")
        .order_by("joined_seq", "id")
    )
    return membership.conversation, membership, members


def message_history(
    *, ticket: VerifiedTicket, user_id: int, conversation_id: int, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Messages the user may see (from their joining on), newest `limit` before
    seq `before`, returned oldest first."""
    ticket_require(ticket, user_id=user_id)
    membership = Membership.objects.filter(conversation_id=conversation_id, user_id=user_id).first()
    if membership is None or membership.left_seq is not None:
        raise ConversationNotFound()
    query = Message.objects.filter(conversation_id=conversation_id, seq__gte=membership.joined_seq)
    if before is not None:
        query = query.filter(seq__lt=before)
    limit = max(1, min(limit, settings.API_MAX_PAGE_SIZE))
    rows = list(query.order_by("-seq").values(*MESSAGE_FIELDS)[:limit])
    return [message_view(row, user_id) for row in reversed(rows)]


def attachment_access(*, ticket: VerifiedTicket, user_id: int, attachment_id: str) -> Attachment:
    """An attachment the user may read: their own upload, or one sent to a
    conversation they are in."""
    ticket_require(ticket, user_id=user_id)
    attachment = (
        Attachment.objects.filter(pk=attachment_id)
        .filter(
            Q(owner_id=user_id)
            | Q(
                conversation__memberships__user_id=user_id,
                conversation__memberships__left_seq__isnull=True,
            )
        )
        .first()
    )
    if attachment is None:
        raise AttachmentNotFound()
    return attachment
