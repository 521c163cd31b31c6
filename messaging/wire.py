"""The typed wire contracts of messaging: one definition of every shape a client
receives (docs/protocol.md §3), and the functions that build the views.

The websocket frames, the HTTP views, the SQL that builds sync pages
(messaging.store.postgresql, which takes its field list from MessageView) and the
OpenAPI serializers (messaging.api.serializers, held equal by
tests/messaging/test_wire_payloads.py) all follow these definitions; that test
also validates every payload real operations emit against them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, get_origin, get_type_hints

from messaging.models import Conversation, ConversationKind, direct_peer

# --- Message bodies, by message kind -------------------------------------------


class TextBody(TypedDict):
    text: str
    mentions: NotRequired[list[int]]
    mention_all: NotRequired[bool]
    reply_to: NotRequired[int]
    official: NotRequired[dict[str, Any]]  # an official account's rich content


class AttachmentBody(TypedDict):
    """image and file."""

    attachment: str
    name: str
    size: int
    content_type: str
    text: NotRequired[str]
    reply_to: NotRequired[int]


class RecallBody(TypedDict):
    message_id: int


class SystemBody(TypedDict):
    """A notice the system writes; the fields besides `event` depend on it."""

    event: str
    name: NotRequired[str]
    members: NotRequired[list[int]]
    by: NotRequired[int]
    users: NotRequired[list[int]]
    user: NotRequired[int]
    new_owner: NotRequired[int]
    text: NotRequired[str]
    # redpacket_refunded (docs/protocol.md §9)
    packet_id: NotRequired[int]
    message_id: NotRequired[int]
    amount: NotRequired[int]
    unopened: NotRequired[int]
    refunded_to: NotRequired[Literal["sender", "budget"]]


class RedPacketCover(TypedDict):
    id: str
    title: str
    surname: str | None


class RedPacketBody(TypedDict):
    """A red packet (docs/protocol.md §9); sent only with `redpacket.send`."""

    packet_id: int
    kind: Literal["lucky", "equal"]
    greeting: str
    cover: RedPacketCover
    shares: int
    expires_at: str


class RecalledBody(TypedDict):
    """Any message once recalled: no content."""


MESSAGE_BODIES: dict[str, tuple[type, ...]] = {
    "text": (TextBody,),
    "image": (AttachmentBody,),
    "file": (AttachmentBody,),
    "recall": (RecallBody,),
    "system": (SystemBody,),
    "redpacket": (RedPacketBody,),
}


# --- Views --------------------------------------------------------------------


class MessageView(TypedDict):
    id: int
    conversation: int
    seq: int
    sender: int | None
    kind: str
    body: dict[str, Any]  # by kind: MESSAGE_BODIES; {} once recalled
    recalled: bool
    created_at: str  # UTC, with microseconds
    client_msg_id: str | None  # the sender's own id, for the sender only
    adapted_from: NotRequired[str]  # old clients: the group event this text describes


class ConversationView(TypedDict):
    id: int
    kind: str
    name: str
    peer: int | None
    member_count: int
    last_seq: int
    adapted_from: NotRequired[Literal["group"]]  # old clients: a group shown as a chat


class ReadPayload(TypedDict):
    conversation: int
    read_seq: int


class ContactPayload(TypedDict):
    event: Literal["friend_request", "friend_added"]
    user: int
    request: NotRequired[int]


class FlagPayload(TypedDict):
    feature: str
    revision: int
    devices: dict[str, bool]


class ConversationSettingsPayload(TypedDict):
    """Your own settings of a chat changed on one of your devices."""

    conversation: int
    muted: bool
    pinned: bool


class ShakeAssetsPayload(TypedDict):
    """A shake activity's asset manifest is now at `version`: GET /api/shake/assets."""

    activity: int
    version: int


class RedPacketOpener(TypedDict):
    user: int
    amount: int


class RedPacketBubble(TypedDict):
    """One member's view of a red packet's bubble (docs/protocol.md §9)."""

    packet_id: int
    state: Literal["open", "finished", "expired"]
    opened: bool
    amount: int | None
    credit: Literal["arriving", "credited"] | None
    opened_count: int
    shares: int
    refunded_amount: NotRequired[int]  # the sender's view only
    opened_by: NotRequired[RedPacketOpener]  # the sender's, when someone opened it


class MessageUpdatePayload(TypedDict):
    """A message you have changed state for you: a red packet's bubble, or hidden."""

    message: int
    redpacket: NotRequired[RedPacketBubble]
    hidden: NotRequired[Literal[True]]


class EntryView(TypedDict):
    seq: int
    kind: str
    conversation: int | None
    message: MessageView | None
    payload: dict[str, Any] | None  # by kind: ENTRY_KINDS


# Per entry kind: whether it carries a message, a conversation, and its payload type.
ENTRY_KINDS: dict[str, tuple[bool, bool, type | None]] = {
    "message": (True, True, None),
    "read": (False, True, ReadPayload),
    "contact": (False, False, ContactPayload),
    "flag": (False, False, FlagPayload),
    "conversation": (False, True, ConversationSettingsPayload),
    "shake_assets": (False, False, ShakeAssetsPayload),
    "message_update": (False, True, MessageUpdatePayload),
}


class AckView(TypedDict):
    id: int
    conversation: int
    seq: int
    client_msg_id: str
    created_at: str
    duplicate: bool


class ReadAnswer(TypedDict):
    conversation: int
    read_seq: int


class ReceiptAnswer(TypedDict):
    counted: int


class SyncAnswer(TypedDict):
    """GET /api/messaging/sync; the `sync.result` frame adds `type` and `id`."""

    entries: list[EntryView]
    key: int
    more: bool
    conversations: dict[str, ConversationView]


class MessageSearchHit(TypedDict):
    """One message found by full-history search, with the text around the match."""

    message: MessageView
    snippet: str
    # Where the match is in `snippet`: [start, end) in characters.
    match: list[int]


class MessageSearchAnswer(TypedDict):
    """GET /api/messaging/search: hits newest first; `next_before` pages on (null: no more)."""

    results: list[MessageSearchHit]
    conversations: dict[str, ConversationView]
    next_before: int | None


# --- Server frames --------------------------------------------------------------

RequestId = str | int | None


class HelloFrame(TypedDict):
    type: Literal["hello"]
    protocol: int
    user: int
    device: int
    max_seq: int
    heartbeat: int
    flags: dict[str, Any]
    tier: int  # the server's throttle tier, as in heartbeat.ack (docs/overload.md)


class NotifyFrame(TypedDict):
    type: Literal["notify"]
    seq: int


class TypingFrame(TypedDict):
    """Another member of `conversation` is writing (services.typing)."""

    type: Literal["typing"]
    conversation: int
    user: int


class TypingAckFrame(TypedDict):
    type: Literal["typing.ack"]
    id: RequestId
    relayed: bool


class SyncResultFrame(TypedDict):
    type: Literal["sync.result"]
    id: RequestId
    entries: list[EntryView]
    key: int
    more: bool
    conversations: dict[str, ConversationView]


class SendAckFrame(TypedDict):
    type: Literal["send.ack"]
    id: RequestId
    message: AckView


class RecallAckFrame(TypedDict):
    type: Literal["recall.ack"]
    id: RequestId
    message: AckView


class ReadAckFrame(TypedDict):
    type: Literal["read.ack"]
    id: RequestId
    conversation: int
    read_seq: int


class ReceiptAckFrame(TypedDict):
    type: Literal["receipt.ack"]
    id: RequestId
    counted: int


class HeartbeatAckFrame(TypedDict):
    type: Literal["heartbeat.ack"]
    id: RequestId
    interval: int
    max_seq: int
    tier: int  # the server's throttle tier (docs/overload.md)


class ThrottleFrame(TypedDict):
    type: Literal["throttle"]
    id: RequestId
    tier: int
    retry_after: int  # seconds
    reason: NotRequired[str]


class ErrorFrame(TypedDict):
    type: Literal["error"]
    id: RequestId
    code: str
    message: str
    details: dict[str, Any]


SERVER_FRAMES: dict[str, type] = {
    "hello": HelloFrame,
    "notify": NotifyFrame,
    "sync.result": SyncResultFrame,
    "send.ack": SendAckFrame,
    "recall.ack": RecallAckFrame,
    "read.ack": ReadAckFrame,
    "receipt.ack": ReceiptAckFrame,
    "heartbeat.ack": HeartbeatAckFrame,
    "throttle": ThrottleFrame,
    "typing": TypingFrame,
    "typing.ack": TypingAckFrame,
    "error": ErrorFrame,
}


def keys_of(typed: type) -> tuple[frozenset[str], frozenset[str]]:
    """A TypedDict's (required, optional) keys. Read from the evaluated hints:
    with postponed annotations Python 3.11 counts NotRequired keys as required."""
    hints = get_type_hints(typed, include_extras=True)
    optional = frozenset(key for key, hint in hints.items() if get_origin(hint) is NotRequired)
    return frozenset(hints) - optional, optional


# --- Builders -------------------------------------------------------------------


def timestamp(moment: dt.datetime) -> str:
    """How a message's `created_at` is written: UTC, with microseconds."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def message_view(row: Mapping[str, Any], viewer_id: int | None = None) -> MessageView:
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
        "created_at": timestamp(row["created_at"]),
        "client_msg_id": row["client_msg_id"] if own else None,
    }


def conversation_view(row: Mapping[str, Any], viewer_id: int) -> ConversationView:
    peer = None
    if row["kind"] == ConversationKind.DIRECT and row["direct_key"]:
        peer = direct_peer(row["direct_key"], viewer_id)
    return {
        "id": row["id"],
        "kind": row["kind"],
        "name": row["name"],
        "peer": peer,
        "member_count": row["member_count"],
        "last_seq": row["last_seq"],
    }


def conversation_view_of(conversation: Conversation, viewer_id: int) -> ConversationView:
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
