"""Typed values of the messaging domain: what services take and return."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from uuid import UUID

from messaging.wire import ConversationView, EntryView


@dataclass(frozen=True, slots=True)
class OutgoingContent:
    """What a client sends: text, or an uploaded image/file with an optional caption."""

    kind: str
    text: str = ""
    attachment_id: UUID | None = None
    mentions: tuple[int, ...] = ()
    mention_all: bool = False
    reply_to: int | None = None


@dataclass(frozen=True, slots=True)
class SendAck:
    """The answer to a send: the stored message and its place in the conversation.
    `duplicate` is true when the client_msg_id had already been sent."""

    message_id: int
    conversation_id: int
    seq: int
    client_msg_id: str
    created_at: dt.datetime
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class WireSyncPage:
    """A sync page ready for the wire: `entries_json` is the JSON array of entries."""

    entries_json: str
    key: int
    more: bool
    conversations: dict[int, ConversationView]


@dataclass(frozen=True, slots=True)
class SyncPage:
    """Entries after a key, in order, and the key to sync from next."""

    entries: list[EntryView]
    key: int
    more: bool
    conversations: dict[int, ConversationView] = field(default_factory=dict)
