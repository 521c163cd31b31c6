"""The storage interface of the send path and the sync read (Synapse's storage style).

Services and selectors reach the conversation log and the sync logs through a
`MessageStore`, chosen once by database vendor (messaging.store.store): the
PostgreSQL store does the hot work in hand-written SQL, the portable store in
the ORM on any database (the embedded SQLite mode). Both keep the same rules,
and tests/messaging/test_store_parity.py holds them to the same answers:

- an event gets the conversation's next seq, under the conversation's lock;
- members receive the events numbered from their `joined_seq` through their
  `left_seq`, each in one order (the `DeliveryCursor` moves only in seq order);
- each recipient's entry takes the next seq of their own log, sequences locked
  in user-id order; the users are notified after commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings

from messaging.models import Message
from messaging.wire import EntryView, MessageView, message_view
from wechat_core.metrics import counter, histogram
from wechat_core.sync.log import entries_count_on_commit
from wechat_core.transactions import after_commit

MESSAGES_DELIVERED = counter(
    "messaging_messages_delivered_total",
    "Conversation events written into a recipient's sync log, by delivery path.",
    ["path"],
    process_labels=True,
)
FANOUT = histogram(
    "messaging_fanout_recipients",
    "Recipients each conversation event is delivered to, by delivery path.",
    ["path"],
    buckets=(1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000),
    process_labels=True,
)


def deliveries_count_on_commit(path: str, recipients: list[int]) -> None:
    """Count delivered events (one per recipient list) once the transaction commits."""
    if not recipients:
        return

    def count() -> None:
        MESSAGES_DELIVERED.inc(path, amount=sum(recipients))
        for size in recipients:
            FANOUT.observe(path, value=size)

    after_commit(count, name="metrics")
    entries_count_on_commit("message", sum(recipients))


def delivery_is_inline(member_count: int) -> bool:
    return member_count <= settings.MESSAGING_INLINE_DELIVERY_MAX_MEMBERS


# The kinds whose text (and file name) full-history search reads.
SEARCHABLE_KINDS = ("text", "image", "file")


def receives(seq: int, joined_seq: int, left_seq: int | None) -> bool:
    """Members receive the events numbered from joining through leaving."""
    return joined_seq <= seq and (left_seq is None or seq <= left_seq)


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


def messages_by_id(ids: list[int], viewer_id: int | None = None) -> dict[int, MessageView]:
    """Messages as `viewer_id` sees them (wire.message_view), by id: the same read
    for both stores and for the selectors."""
    return {
        row["id"]: message_view(row, viewer_id)
        for row in Message.objects.filter(id__in=ids).values(*MESSAGE_FIELDS)
    }


@dataclass(frozen=True, slots=True)
class ConversationHead:
    kind: str
    direct_key: str | None
    member_count: int
    role: str | None  # the user's role; None when not an active member


@dataclass(frozen=True, slots=True)
class PreviousSend:
    """A user's earlier message with the same client_msg_id."""

    message_id: int
    conversation_id: int
    seq: int
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AppendedEvent:
    id: int
    seq: int
    created_at: dt.datetime
    delivered: bool  # in every recipient's log already; else delivery is still to do


@dataclass(frozen=True, slots=True)
class SyncEntries:
    """One page of a user's log, oldest first, each message entry with its message."""

    entries: list[EntryView]
    more: bool


@dataclass(frozen=True, slots=True)
class SyncPageJson:
    """The same page as the JSON array the wire carries; `conversations`, when the
    store read them with the page, are the rows of `conversation_ids` in id order
    (the columns wire.conversation_view reads)."""

    entries_json: str
    last_seq: int | None
    more: bool
    conversation_ids: list[int]
    conversations: list[dict[str, Any]] | None = None


class MessageStore(Protocol):
    """What the send path and the sync read need from the database."""

    name: str

    def previous_send(self, user_id: int, client_msg_id: str) -> PreviousSend | None:
        """The user's message with this client id, in whatever conversation."""
        ...

    def conversation_head(self, conversation_id: int, user_id: int) -> ConversationHead | None:
        """The conversation, locked until commit, and the user's role in it; None when
        it does not exist."""
        ...

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
        """Give the next seq to a new event of a conversation locked by
        conversation_head (or events.conversation_lock), store it (the conversation
        now counts `member_count` members) and, with `inline`, deliver it with
        everything pending before it. `delivered` is False when it did not deliver:
        the caller schedules the delivery (services.delivery)."""
        ...

    def conversation_deliver(self, *, conversation_id: int) -> int:
        """Deliver a batch (MESSAGING_DELIVERY_BATCH) of the conversation's pending
        events into their recipients' logs; returns how many. In a transaction."""
        ...

    def sync_entries(self, user_id: int, since: int, limit: int) -> SyncEntries:
        """The user's entries after `since`, at most `limit` of them."""
        ...

    def sync_page_json(self, user_id: int, since: int, limit: int) -> SyncPageJson:
        """sync_entries encoded for the wire."""
        ...

    def message_search(
        self,
        *,
        user_id: int,
        query: str,
        conversation_id: int | None,
        before_id: int | None,
        limit: int,
    ) -> list[int]:
        """Ids of the messages the user received (from joining through leaving, in
        every conversation they are or were in) whose text or file name contains
        `query` (any case), newest first: text, image and file messages not
        recalled, with ids below `before_id`, in one conversation if given."""
        ...
