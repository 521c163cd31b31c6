"""Reads of the messaging app: sync pages, conversations, history, attachments.

Every function takes the verified ticket and the id of the user whose data it
reads, and calls ticket_require first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.exceptions import UserNotFound
from accounts.models import User
from accounts.selectors import user_profile_get
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.compat import (
    adapt_group_conversation,
    adapt_group_message,
    adapt_kind_message,
    supports_all_kinds,
    supports_groups,
    supports_kind,
)
from messaging.exceptions import AttachmentNotFound, ConversationNotFound
from messaging.models import (
    Attachment,
    Conversation,
    ConversationKind,
    HiddenMessage,
    Membership,
    Message,
)
from messaging.services.kinds import unread_kinds
from messaging.store import store
from messaging.store.base import MESSAGE_FIELDS, SyncPageJson, messages_by_id
from messaging.types import SyncPage, WireSyncPage
from messaging.wire import (
    ConversationView,
    EntryView,
    MessageSearchAnswer,
    MessageSearchHit,
    MessageView,
    conversation_view,
    conversation_view_of,
    message_view,
)
from wechat_core.errors import RateLimited
from wechat_core.ratelimit import window_hit
from wechat_core.sync.models import UserSequence

# The views clients see are built by messaging.wire; these names stay for callers.
__all__ = ["conversation_view_of", "messages_by_id"]


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


def _conversations(ids: Iterable[int], viewer_id: int) -> dict[int, ConversationView]:
    return {
        row["id"]: conversation_view(row, viewer_id)
        for row in Conversation.objects.filter(id__in=set(ids)).values(
            "id", "kind", "name", "member_count", "last_seq", "direct_key"
        )
    }


def sync_limit(limit: int) -> int:
    """The page size a sync asks for, within 1..MESSAGING_SYNC_MAX_LIMIT."""
    return max(1, min(limit, settings.MESSAGING_SYNC_MAX_LIMIT))


def wire_page(page: SyncPageJson, *, since: int, user_id: int) -> WireSyncPage:
    """A store's JSON page as the wire's, its conversations described for `user_id`
    (from the rows the store read with the page, when it did)."""
    if page.conversations is not None:
        conversations = {row["id"]: conversation_view(row, user_id) for row in page.conversations}
    else:
        conversations = _conversations(page.conversation_ids, user_id)
    return WireSyncPage(
        entries_json=page.entries_json,
        key=page.last_seq if page.last_seq is not None else since,
        more=page.more,
        conversations=conversations,
    )


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
    (see messaging.compat), and so do messages of kinds they are too old for
    (messaging.services.kinds). An entry is a wire.EntryView.
    """
    ticket_require(ticket, user_id=user_id)
    page = store().sync_entries(user_id, since, sync_limit(limit))
    entries = page.entries
    conversations = _conversations(
        (entry["conversation"] for entry in entries if entry["conversation"]), user_id
    )
    version = client_version if client_version is not None else device_client_version(ticket=ticket)
    if not supports_groups(version):
        _adapt_for_legacy(entries, conversations)
    if not supports_all_kinds(version):
        for entry in entries:
            message = entry["message"]
            if not isinstance(message, dict) or message.get("adapted_from") is not None:
                continue
            if not supports_kind(version, message["kind"]):
                entry["message"] = adapt_kind_message(message)
    key = entries[-1]["seq"] if entries else since
    return SyncPage(entries=entries, key=key, more=page.more, conversations=conversations)


def sync_read_wire(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    since: int,
    limit: int,
    client_version: str | None = None,
) -> WireSyncPage:
    """sync_read for the wire: the entries already encoded as JSON (for current
    clients, by the store: PostgreSQL builds the JSON itself)."""
    ticket_require(ticket, user_id=user_id)
    version = client_version if client_version is not None else device_client_version(ticket=ticket)
    if supports_groups(version) and supports_all_kinds(version):
        page = store().sync_page_json(user_id, since, sync_limit(limit))
        return wire_page(page, since=since, user_id=user_id)
    python_page = sync_read(
        ticket=ticket, user_id=user_id, since=since, limit=limit, client_version=version
    )
    return WireSyncPage(
        entries_json=json.dumps(python_page.entries, separators=(",", ":")),
        key=python_page.key,
        more=python_page.more,
        conversations=python_page.conversations,
    )


def _people_in(message: MessageView) -> set[int]:
    body = message["body"]
    ids = {message["sender"], body.get("by"), body.get("user"), *body.get("users", [])}
    return {int(user_id) for user_id in ids if user_id}


def _adapt_for_legacy(entries: list[EntryView], conversations: dict[int, ConversationView]) -> None:
    groups = {cid for cid, conv in conversations.items() if conv["kind"] == ConversationKind.GROUP}
    group_messages = [
        entry
        for entry in entries
        if entry["message"] is not None and entry["message"]["conversation"] in groups
    ]
    if not group_messages:
        return
    people = set().union(
        *(_people_in(entry["message"]) for entry in group_messages if entry["message"])
    )
    names = dict(User.objects.filter(pk__in=people).values_list("pk", "nickname"))
    for entry in group_messages:
        if entry["message"] is not None:
            entry["message"] = adapt_group_message(entry["message"], names)
    for cid in groups:
        conversations[cid] = adapt_group_conversation(conversations[cid])


def conversation_list(*, ticket: VerifiedTicket, user_id: int) -> QuerySet[Membership]:
    """The user's conversations, pinned first, then most recently active; annotated with
    `unread` (messages from others after the read position) and `last_message_id`."""
    ticket_require(ticket, user_id=user_id)
    unread = (
        Message.objects.filter(
            conversation_id=OuterRef("conversation_id"),
            seq__gt=OuterRef("read_seq"),
            kind__in=unread_kinds(),
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
        # Pinned chats first (the most recently pinned on top), then by activity.
        .order_by(F("pinned_at").desc(nulls_last=True), "-last_activity", "-conversation_id")
    )


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
    *,
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    before: int | None,
    limit: int,
    after: int | None = None,
) -> list[MessageView]:
    """Messages the user may see (from their joining on, not deleted for them),
    newest `limit` before seq `before` (or, with `after`, the oldest `limit` after
    seq `after`), returned oldest first."""
    ticket_require(ticket, user_id=user_id)
    membership = Membership.objects.filter(conversation_id=conversation_id, user_id=user_id).first()
    if membership is None or membership.left_seq is not None:
        raise ConversationNotFound()
    query = Message.objects.filter(
        conversation_id=conversation_id, seq__gte=membership.joined_seq
    ).exclude(  # deleted for this user ("delete for me", services.hiding)
        pk__in=HiddenMessage.objects.filter(
            user_id=user_id, message__conversation_id=conversation_id
        ).values("message_id")
    )
    if before is not None:
        query = query.filter(seq__lt=before)
    limit = max(1, min(limit, settings.API_MAX_PAGE_SIZE))
    if after is not None:
        rows = list(query.filter(seq__gt=after).order_by("seq").values(*MESSAGE_FIELDS)[:limit])
        return [message_view(row, user_id) for row in rows]
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


SEARCH_SCOPE = "message-search"


def _snippet(message: MessageView, query: str) -> tuple[str, list[int]]:
    """The text around the first match (MESSAGING_SEARCH_SNIPPET_CHARS on each side),
    and where the match is in it."""
    body = message["body"]
    text = str(body.get("text") or "")
    at = text.casefold().find(query.casefold())
    if at < 0:  # found in the file name, or a whole short word in another case
        name = str(body.get("name") or "")
        at = name.casefold().find(query.casefold())
        text = name if at >= 0 else text
    if at < 0:
        return text[: 2 * settings.MESSAGING_SEARCH_SNIPPET_CHARS], [0, 0]
    start = max(0, at - settings.MESSAGING_SEARCH_SNIPPET_CHARS)
    end = at + len(query) + settings.MESSAGING_SEARCH_SNIPPET_CHARS
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    snippet = prefix + text[start:end] + suffix
    first = len(prefix) + at - start
    return snippet, [first, first + len(query)]


def message_search(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    query: str,
    conversation_id: int | None = None,
    before: int | None = None,
    limit: int = 20,
) -> MessageSearchAnswer:
    """Full-history search: the messages the user received (in every conversation
    they are or were in, from joining through leaving) whose text or file name
    contains `query`, newest first, `limit` at a time (page on with `before`, the
    answer's `next_before`). Recalled messages are not found. On PostgreSQL a
    Latin query of one or two letters matches whole words (messaging.store)."""
    ticket_require(ticket, user_id=user_id)
    hits = window_hit(scope=SEARCH_SCOPE, identity=str(user_id), window_seconds=60)
    if hits.count > settings.MESSAGING_SEARCHES_PER_MINUTE:
        raise RateLimited(
            f"At most {settings.MESSAGING_SEARCHES_PER_MINUTE} searches a minute.",
            retry_after=hits.retry_after,
        )
    query = query.strip()
    limit = max(1, min(limit, settings.MESSAGING_SEARCH_MAX_RESULTS))
    ids = store().message_search(
        user_id=user_id,
        query=query,
        conversation_id=conversation_id,
        before_id=before,
        limit=limit + 1,
    )
    more = len(ids) > limit
    ids = ids[:limit]
    messages = messages_by_id(ids, user_id)
    results: list[MessageSearchHit] = []
    for message_id in ids:
        message = messages[message_id]
        snippet, match = _snippet(message, query)
        results.append({"message": message, "snippet": snippet, "match": match})
    conversations = _conversations((hit["message"]["conversation"] for hit in results), user_id)
    return {
        "results": results,
        "conversations": {str(cid): view for cid, view in conversations.items()},
        "next_before": ids[-1] if more else None,
    }
