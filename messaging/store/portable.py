"""The portable MessageStore: the ORM on any database (the embedded SQLite mode),
and the part of the PostgreSQL store that is not worth hand-written SQL (the
batch delivery behind big groups, the Python sync page of old clients).

Delivery takes the conversation's `DeliveryCursor` lock, reads every event after
the cursor in seq order, appends one entry per event to each of its recipients'
logs, and moves the cursor. Because only the lock holder delivers, and always in
seq order, every member's log lists the conversation's events in one order.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from messaging.models import Conversation, DeliveryCursor, HiddenMessage, Membership, Message
from messaging.store.base import (
    SEARCHABLE_KINDS,
    AppendedEvent,
    ConversationHead,
    PreviousSend,
    SyncEntries,
    SyncPageJson,
    deliveries_count_on_commit,
    delivery_is_inline,
    messages_by_id,
    receives,
)
from messaging.wire import EntryView
from wechat_core.sync.log import local_users, notify_on_commit, sequences_allocate
from wechat_core.sync.models import EntryKind, SyncEntry


class PortableStore:
    name = "portable"

    def previous_send(self, user_id: int, client_msg_id: str) -> PreviousSend | None:
        row = (
            Message.objects.filter(sender_id=user_id, client_msg_id=client_msg_id)
            .values_list("id", "conversation_id", "seq", "created_at")
            .first()
        )
        return None if row is None else PreviousSend(*row)

    def conversation_head(self, conversation_id: int, user_id: int) -> ConversationHead | None:
        conversation = (
            Conversation.objects.select_for_update(no_key=True)
            .filter(pk=conversation_id)
            .values_list("kind", "direct_key", "member_count")
            .first()
        )
        if conversation is None:
            return None
        role = (
            Membership.objects.filter(
                conversation_id=conversation_id, user_id=user_id, left_seq__isnull=True
            )
            .values_list("role", flat=True)
            .first()
        )
        return ConversationHead(*conversation, role)

    def event_append(
        self,
        *,
        conversation_id: int,
        sender_id: int | None,
        kind: str,
        body: dict[str, Any],
        client_msg_id: str | None,
        member_count: int,
        inline: bool,
    ) -> AppendedEvent:
        Conversation.objects.filter(pk=conversation_id).update(
            last_seq=F("last_seq") + 1, member_count=member_count
        )
        seq = Conversation.objects.values_list("last_seq", flat=True).get(pk=conversation_id)
        message = Message.objects.create(
            conversation_id=conversation_id,
            seq=seq,
            sender_id=sender_id,
            kind=kind,
            body=body,
            client_msg_id=client_msg_id,
        )
        delivered = inline and self.conversation_deliver(conversation_id=conversation_id) > 0
        return AppendedEvent(message.pk, seq, message.created_at, delivered)

    def conversation_deliver(self, *, conversation_id: int) -> int:
        cursor = (
            DeliveryCursor.objects.select_for_update(no_key=True)
            .filter(conversation_id=conversation_id)
            .first()
        )
        if cursor is None:
            return 0
        events = list(
            Message.objects.filter(conversation_id=conversation_id, seq__gt=cursor.delivered_seq)
            .order_by("seq")
            .values_list("id", "seq")[: settings.MESSAGING_DELIVERY_BATCH]
        )
        if not events:
            return 0
        first_seq, last_seq = events[0][1], events[-1][1]
        members = list(
            Membership.objects.filter(conversation_id=conversation_id, joined_seq__lte=last_seq)
            .filter(Q(left_seq__isnull=True) | Q(left_seq__gte=first_seq))
            .values_list("user_id", "joined_seq", "left_seq")
        )
        here = local_users(user for user, _, _ in members)  # the others' logs are at home
        members = [member for member in members if member[0] in here]
        recipients = [
            (message_id, [user for user, joined, left in members if receives(seq, joined, left)])
            for message_id, seq in events
        ]
        counts = Counter(user for _, users in recipients for user in users)
        last = sequences_allocate(counts)
        next_seq = {user: last[user] - counts[user] + 1 for user in counts}
        entries = []
        for message_id, users in recipients:
            for user in users:
                entries.append(
                    SyncEntry(
                        user_id=user,
                        seq=next_seq[user],
                        kind=EntryKind.MESSAGE,
                        conversation_id=conversation_id,
                        message_id=message_id,
                    )
                )
                next_seq[user] += 1
        SyncEntry.objects.bulk_create(entries, batch_size=1000)
        path = "inline" if delivery_is_inline(len(counts)) else "celery"
        deliveries_count_on_commit(path, [len(users) for _, users in recipients if users])
        DeliveryCursor.objects.filter(pk=conversation_id).update(
            delivered_seq=last_seq, updated_at=timezone.now()
        )
        notify_on_commit(last)
        return len(events)

    def sync_entries(self, user_id: int, since: int, limit: int) -> SyncEntries:
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
        entries: list[EntryView] = [
            {
                "seq": row["seq"],
                "kind": row["kind"],
                "conversation": row["conversation_id"],
                "message": messages.get(row["message_id"]) if row["message_id"] else None,
                "payload": row["payload"],
            }
            for row in rows
        ]
        return SyncEntries(entries, more)

    def sync_page_json(self, user_id: int, since: int, limit: int) -> SyncPageJson:
        page = self.sync_entries(user_id, since, limit)
        conversation_ids = sorted(
            {entry["conversation"] for entry in page.entries if entry["conversation"]}
        )
        return SyncPageJson(
            entries_json=json.dumps(page.entries, separators=(",", ":")),
            last_seq=page.entries[-1]["seq"] if page.entries else None,
            more=page.more,
            conversation_ids=conversation_ids,
        )

    def message_search(
        self,
        *,
        user_id: int,
        query: str,
        conversation_id: int | None,
        before_id: int | None,
        limit: int,
    ) -> list[int]:
        # No index: a scan of the user's messages (fine for the embedded mode's sizes).
        received = Membership.objects.filter(
            user_id=user_id,
            conversation_id=OuterRef("conversation_id"),
            joined_seq__lte=OuterRef("seq"),
        ).filter(Q(left_seq__isnull=True) | Q(left_seq__gte=OuterRef("seq")))
        matches = Message.objects.filter(
            Exists(received),
            Q(body__text__icontains=query) | Q(body__name__icontains=query),
            kind__in=SEARCHABLE_KINDS,
            recalled_at__isnull=True,
        ).exclude(  # deleted for this user ("delete for me")
            pk__in=HiddenMessage.objects.filter(user_id=user_id).values("message_id")
        )
        if conversation_id is not None:
            matches = matches.filter(conversation_id=conversation_id)
        if before_id is not None:
            matches = matches.filter(id__lt=before_id)
        return list(matches.order_by("-id").values_list("id", flat=True)[:limit])
