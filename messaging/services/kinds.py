"""Message kinds and websocket frames that other apps add to the SYNC protocol.

Messaging numbers, stores and delivers events; it does not know what a red
packet is. The app that owns a kind registers it in its AppConfig.ready:

- `message_kind_register(MessageKindSpec(...))`: messages of that kind are stored
  with the body the owning app built (sent through
  `services.sending.message_send_kind`, never by a plain `send` frame), and
  devices older than `min_client_version` get the message adapted into a text
  line (`describe`), as messaging.compat does for groups; `counts_unread` says
  whether it adds to a conversation's `unread` count like text, images and files;
- `system_event_register(event, describe)`: how a `system` message with that
  event reads as text on devices too old for it;
- `frame_handler_register(type, handler)`: a websocket frame type the consumer
  does not know itself. The handler runs in a worker thread with the verified
  ticket and the frame's object, and returns the answer frame (its "type" and
  fields; the consumer adds the request id), or `Serialised(key, run, then)`: the rest
  of the work, which may wait on a lock (a hot packet's row), is run one at a
  time per `key` in this process, in a small executor of its own, so the worker
  threads that answer everything else never wait behind it (over HTTP, `run` is
  called at once). Errors it raises (ServiceError) become error frames like any
  other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from accounts.types import VerifiedTicket

Describe = Callable[[Mapping[str, Any]], str]


def _as_frame(value: Any) -> dict[str, Any]:
    return dict(value)


@dataclass(frozen=True, slots=True)
class Serialised:
    """A frame handler's answer still to be computed: `run` one call at a time per
    `key` in this process (seed 004: 串行化 of a hot packet's winners), then
    `then(run's result)` (the answer frame) after the next call of that key may
    start, for work that need not wait in line (a grab's sync entries)."""

    key: str
    run: Callable[[], Any]
    then: Callable[[Any], dict[str, Any]] = _as_frame


FrameHandler = Callable[[VerifiedTicket, Mapping[str, Any]], dict[str, Any] | Serialised]


@dataclass(frozen=True, slots=True)
class MessageKindSpec:
    kind: str  # at most 16 characters (Message.kind)
    min_client_version: str  # older devices get `describe(body)` as a text message
    describe: Describe
    counts_unread: bool = False  # adds to `unread` like text, images and files


_kinds: dict[str, MessageKindSpec] = {}
_system_events: dict[str, Describe] = {}
_frames: dict[str, FrameHandler] = {}


def message_kind_register(spec: MessageKindSpec) -> None:
    if len(spec.kind) > 16:
        raise ValueError("A message kind has at most 16 characters.")
    _kinds[spec.kind] = spec


def message_kind_spec(kind: str) -> MessageKindSpec | None:
    return _kinds.get(kind)


def message_kinds() -> tuple[MessageKindSpec, ...]:
    return tuple(_kinds.values())


# The built-in kinds people write; registered kinds join them with counts_unread.
BUILTIN_UNREAD_KINDS = ("text", "image", "file")


def unread_kinds() -> tuple[str, ...]:
    """The message kinds a conversation's `unread` count counts (from others,
    after the read position). Read at call time: kinds register in AppConfig.ready."""
    return BUILTIN_UNREAD_KINDS + tuple(k for k, spec in _kinds.items() if spec.counts_unread)


def system_event_register(event: str, describe: Describe) -> None:
    _system_events[event] = describe


def system_event_describe(event: str) -> Describe | None:
    return _system_events.get(event)


def frame_handler_register(frame_type: str, handler: FrameHandler) -> None:
    _frames[frame_type] = handler


def frame_handler(frame_type: str) -> FrameHandler | None:
    return _frames.get(frame_type)


def frame_types() -> tuple[str, ...]:
    return tuple(_frames)
