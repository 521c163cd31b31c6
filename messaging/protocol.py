"""The SYNC wire protocol: client frames parsed into typed commands, and the
frames the server sends. docs/protocol.md is the specification; the websocket
consumer and the HTTP endpoints both parse with this module, through the command
table of messaging.commands.

Parsing is strict: a field of the wrong JSON type is an error, never coerced.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from messaging.types import OutgoingContent, SendAck, WireSyncPage
from messaging.wire import AckView, ErrorFrame
from wechat_core.errors import ServiceError
from wechat_core.jsoninput import json_parse, text_refusal

PROTOCOL_VERSION = 1
SUBPROTOCOL = "wechat.sync.v1"
TICKET_SUBPROTOCOL_PREFIX = "ticket."
MAX_ID = 2**63 - 1


class FrameError(ServiceError):
    """A frame the server cannot read; answered with an error frame, connection kept."""

    code = "malformed_frame"
    default_message = "The frame is not valid."


class InvalidField(FrameError):
    """A readable frame or body with a field missing or of the wrong type."""

    code = "invalid"


class UnknownFrameType(FrameError):
    code = "unknown_frame_type"


class FrameTooLarge(FrameError):
    code = "frame_too_large"


@dataclass(frozen=True, slots=True)
class SyncCommand:
    request_id: str | int | None
    key: int
    limit: int


@dataclass(frozen=True, slots=True)
class SendCommand:
    request_id: str | int | None
    conversation_id: int
    client_msg_id: str
    content: OutgoingContent


@dataclass(frozen=True, slots=True)
class RecallCommand:
    request_id: str | int | None
    message_id: int


@dataclass(frozen=True, slots=True)
class ReadCommand:
    request_id: str | int | None
    conversation_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class TypingCommand:
    request_id: str | int | None
    conversation_id: int


@dataclass(frozen=True, slots=True)
class HeartbeatCommand:
    request_id: str | int | None


@dataclass(frozen=True, slots=True)
class ReceiptCommand:
    request_id: str | int | None
    shown: list[tuple[int, int]]  # (message id, milliseconds since it was displayed)


@dataclass(frozen=True, slots=True)
class ExtensionCommand:
    """A frame type another app registered (messaging.services.kinds)."""

    request_id: str | int | None
    frame_type: str
    data: dict[str, Any]


Command = (
    SyncCommand
    | SendCommand
    | RecallCommand
    | ReadCommand
    | HeartbeatCommand
    | ReceiptCommand
    | TypingCommand
    | ExtensionCommand
)


def _int(data: dict[str, Any], name: str, *, minimum: int = 0, default: int | None = None) -> int:
    value = data.get(name, default)
    if value is None:
        raise InvalidField(f"{name} is required.", details={"field": name})
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_ID:
        raise InvalidField(f"{name} must be an integer >= {minimum}.", details={"field": name})
    return int(value)


def _str(data: dict[str, Any], name: str, *, default: str | None = None, max_length: int) -> str:
    value = data.get(name, default)
    if value is None:
        raise InvalidField(f"{name} is required.", details={"field": name})
    if not isinstance(value, str):
        raise InvalidField(f"{name} must be a string.", details={"field": name})
    if len(value) > max_length:
        raise InvalidField(f"{name} is longer than {max_length}.", details={"field": name})
    return value


def _request_id(data: dict[str, Any]) -> str | int | None:
    value = data.get("id")
    if value is None or (
        isinstance(value, str) and len(value) <= 64 and text_refusal(value) is None
    ):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID:
        return value
    raise InvalidField("id must be a string of at most 64 characters or an integer.")


def parse_content(data: Any) -> OutgoingContent:
    if not isinstance(data, dict):
        raise InvalidField("content must be an object.", details={"field": "content"})
    kind = _str(data, "kind", default="text", max_length=16)
    # The service enforces MESSAGING_TEXT_MAX_CHARS with a precise error; this only
    # bounds what is parsed at all.
    text = _str(data, "text", default="", max_length=settings.MESSAGING_TEXT_MAX_CHARS * 4)
    attachment = data.get("attachment")
    attachment_id = None
    if attachment is not None:
        try:
            attachment_id = uuid.UUID(_str(data, "attachment", max_length=36))
        except ValueError as error:
            raise InvalidField("attachment must be an attachment id.") from error
    mentions = data.get("mentions", [])
    if not isinstance(mentions, list) or not all(
        isinstance(m, int) and not isinstance(m, bool) and 0 < m <= MAX_ID for m in mentions
    ):
        raise InvalidField("mentions must be a list of user ids.", details={"field": "mentions"})
    mention_all = data.get("mention_all", False)
    if not isinstance(mention_all, bool):
        raise InvalidField("mention_all must be true or false.", details={"field": "mention_all"})
    reply_to = _int(data, "reply_to", minimum=1) if data.get("reply_to") is not None else None
    return OutgoingContent(
        kind=kind,
        text=text,
        attachment_id=attachment_id,
        mentions=tuple(mentions),
        mention_all=mention_all,
        reply_to=reply_to,
    )


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FrameError("Send a JSON object.")
    return data


def parse_send(data: Any, request_id: str | int | None = None) -> SendCommand:
    data = _object(data)
    return SendCommand(
        request_id=request_id,
        conversation_id=_int(data, "conversation", minimum=1),
        client_msg_id=_str(data, "client_msg_id", max_length=64),
        content=parse_content(data.get("content")),
    )


def parse_sync(data: Any, request_id: str | int | None = None) -> SyncCommand:
    data = _object(data)
    return SyncCommand(
        request_id=request_id,
        key=_int(data, "key", default=0),
        limit=_int(data, "limit", minimum=1, default=settings.MESSAGING_SYNC_DEFAULT_LIMIT),
    )


def parse_recall(data: Any, request_id: str | int | None = None) -> RecallCommand:
    return RecallCommand(request_id, _int(_object(data), "message", minimum=1))


def parse_read(data: Any, request_id: str | int | None = None) -> ReadCommand:
    data = _object(data)
    return ReadCommand(request_id, _int(data, "conversation", minimum=1), _int(data, "seq"))


def parse_typing(data: Any, request_id: str | int | None = None) -> TypingCommand:
    return TypingCommand(request_id, _int(_object(data), "conversation", minimum=1))


def parse_receipt(data: Any, request_id: str | int | None = None) -> ReceiptCommand:
    messages = _object(data).get("messages")
    if not isinstance(messages, list):
        raise InvalidField("messages must be a list.", details={"field": "messages"})
    shown = []
    for item in messages:
        if not isinstance(item, dict):
            raise InvalidField("each message is an object.", details={"field": "messages"})
        shown.append((_int(item, "id", minimum=1), _int(item, "shown_ago_ms", default=0)))
    return ReceiptCommand(request_id, shown)


@dataclass(frozen=True, slots=True)
class Frame:
    """A client frame read as a JSON object, with its request id."""

    raw: str | bytes
    data: dict[str, Any]
    request_id: str | int | None


def frame_read(raw: str | bytes | None) -> Frame:
    """The frame's object and id, or FrameError: an error raised here cannot echo
    the id (the frame is unreadable, too large, or its id is not valid)."""
    if raw is None:
        raise FrameError("Send frames as JSON text.")
    if len(raw) > settings.MESSAGING_MAX_FRAME_BYTES:
        raise FrameTooLarge(
            f"Frames may be at most {settings.MESSAGING_MAX_FRAME_BYTES} bytes.",
            details={"limit": settings.MESSAGING_MAX_FRAME_BYTES},
        )
    try:
        data = json_parse(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise FrameError(f"The frame is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise FrameError("A frame is a JSON object.")
    return Frame(raw, data, _request_id(data))


# --- Server frames ------------------------------------------------------------------


def ack_body(ack: SendAck) -> AckView:
    return {
        "id": ack.message_id,
        "conversation": ack.conversation_id,
        "seq": ack.seq,
        "client_msg_id": ack.client_msg_id,
        "created_at": ack.created_at.isoformat(),
        "duplicate": ack.duplicate,
    }


def sync_json(page: WireSyncPage, *, frame_id: str | int | None = None, frame: bool) -> str:
    """The JSON text of a sync answer: a `sync.result` frame, or the HTTP body.
    The entries are spliced in as the JSON they already are."""
    conversations = json.dumps(
        {str(cid): conv for cid, conv in page.conversations.items()}, separators=(",", ":")
    )
    head = f'{{"type":"sync.result","id":{json.dumps(frame_id)},' if frame else "{"
    more = "true" if page.more else "false"
    return (
        f'{head}"entries":{page.entries_json},"key":{int(page.key)},"more":{more},'
        f'"conversations":{conversations}}}'
    )


def error_frame(error: ServiceError, request_id: str | int | None = None) -> ErrorFrame:
    return {
        "type": "error",
        "id": request_id,
        "code": error.code,
        "message": error.message,
        "details": error.details,
    }
