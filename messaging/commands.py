"""The one command dispatcher of messaging, behind both transports.

A command is what a client asks of the sync protocol: `send`, `recall`, `read`,
`receipt`, `sync`, `heartbeat`, `typing` (docs/protocol.md §3). Each has one entry here:
its parser (messaging.protocol: input validation and its errors), its handler
(one service or selector call with the verified ticket) and its business
priority (wechat_core.admission.priorities: FastReject refuses by it,
docs/overload.md). The websocket (SyncLink) and the HTTP views both call
`command_parse` and `command_run`; each only renders the `Answer` (a frame, or
a body and a status) and the ServiceErrors raised (error frame, or 4xx JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from accounts.types import VerifiedTicket
from messaging import protocol, selectors
from messaging.protocol import (
    Command,
    ExtensionCommand,
    HeartbeatCommand,
    ReadCommand,
    RecallCommand,
    ReceiptCommand,
    SendCommand,
    SyncCommand,
    TypingCommand,
)
from messaging.selectors_async import sync_read_wire_async
from messaging.services.kinds import Serialised, frame_handler, frame_types
from messaging.services.receipts import receipts_record
from messaging.services.sending import conversation_read, message_recall, message_send
from messaging.services.sending_async import message_send_async
from messaging.services.typing import typing_announce
from messaging.types import WireSyncPage
from messaging.wire import ReadAnswer, ReceiptAnswer, RequestId
from wechat_core.admission.priorities import Business, frame_priority, register_frames
from wechat_core.admission.websocket import tier
from wechat_core.jsoninput import text_check


@dataclass(frozen=True, slots=True)
class Answer:
    """A command's answer. Over HTTP: `body`, with 201 when `created`. Over the
    websocket: a frame of type `reply` carrying the body under `nest` (or its
    fields spread), or `text`, the whole frame already encoded (sync pages)."""

    reply: str
    body: Any = None
    nest: str | None = None
    created: bool = False
    text: Callable[[RequestId], str] | None = field(default=None, compare=False)

    def frame(self, request_id: RequestId) -> dict[str, Any]:
        head: dict[str, Any] = {"type": self.reply, "id": request_id}
        return {**head, self.nest: self.body} if self.nest else {**head, **self.body}


@dataclass(frozen=True, slots=True)
class Context:
    """Who asks: the verified ticket, and the client's version when the transport
    knows it (the websocket reads it once at connect)."""

    ticket: VerifiedTicket
    client_version: str | None = None


Parser = Callable[[Any, RequestId], Command]
Handler = Callable[[Any, Context], Answer]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    parse: Parser
    handle: Handler
    priority: Business


def _send(command: SendCommand, context: Context) -> Answer:
    ticket = context.ticket
    ack = message_send(
        ticket=ticket,
        user_id=ticket.user_id,
        conversation_id=command.conversation_id,
        client_msg_id=command.client_msg_id,
        content=command.content,
    )
    return Answer("send.ack", protocol.ack_body(ack), nest="message", created=not ack.duplicate)


def _recall(command: RecallCommand, context: Context) -> Answer:
    ticket = context.ticket
    ack = message_recall(ticket=ticket, user_id=ticket.user_id, message_id=command.message_id)
    return Answer("recall.ack", protocol.ack_body(ack), nest="message")


def _read(command: ReadCommand, context: Context) -> Answer:
    ticket = context.ticket
    read_seq = conversation_read(
        ticket=ticket,
        user_id=ticket.user_id,
        conversation_id=command.conversation_id,
        seq=command.seq,
    )
    body: ReadAnswer = {"conversation": command.conversation_id, "read_seq": read_seq}
    return Answer("read.ack", body)


def _receipt(command: ReceiptCommand, context: Context) -> Answer:
    ticket = context.ticket
    counted = receipts_record(ticket=ticket, user_id=ticket.user_id, shown=command.shown)
    body: ReceiptAnswer = {"counted": counted}
    return Answer("receipt.ack", body)


def _typing(command: TypingCommand, context: Context) -> Answer:
    ticket = context.ticket
    relayed = typing_announce(
        ticket=ticket, user_id=ticket.user_id, conversation_id=command.conversation_id
    )
    return Answer("typing.ack", {"relayed": relayed})


def _sync(command: SyncCommand, context: Context) -> Answer:
    ticket = context.ticket
    page = selectors.sync_read_wire(
        ticket=ticket,
        user_id=ticket.user_id,
        since=command.key,
        limit=command.limit,
        client_version=context.client_version,
    )
    return _sync_answer(page)


def _sync_answer(page: WireSyncPage) -> Answer:
    return Answer(
        "sync.result",
        text=lambda request_id: protocol.sync_json(page, frame_id=request_id, frame=True),
    )


def _heartbeat(command: HeartbeatCommand, context: Context) -> Answer:
    ticket = context.ticket
    max_seq = selectors.sync_max_seq(ticket=ticket, user_id=ticket.user_id)
    body = {"interval": settings.MESSAGING_HEARTBEAT_SECONDS, "max_seq": max_seq, "tier": tier()}
    return Answer("heartbeat.ack", body)


def _no_fields(data: Any, request_id: RequestId) -> HeartbeatCommand:
    return HeartbeatCommand(request_id)


# In the order docs/protocol.md lists them (unknown_frame_type's `known`).
COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("sync", protocol.parse_sync, _sync, Business.SYNC),
        CommandSpec("send", protocol.parse_send, _send, Business.SEND),
        CommandSpec("recall", protocol.parse_recall, _recall, Business.SEND),
        CommandSpec("read", protocol.parse_read, _read, Business.SEND),
        # Cheap, and how the throttle tier reaches clients before they are refused.
        CommandSpec("heartbeat", _no_fields, _heartbeat, Business.LOGIN),
        CommandSpec("receipt", protocol.parse_receipt, _receipt, Business.SYNC),
        # Nice to have: the first thing an overloaded server may refuse.
        CommandSpec("typing", protocol.parse_typing, _typing, Business.OTHER),
    )
}
# FastReject (wechat_core.admission) refuses frames by these priorities.
register_frames({name: spec.priority for name, spec in COMMANDS.items()})

_BY_TYPE: dict[type, CommandSpec] = {
    SyncCommand: COMMANDS["sync"],
    SendCommand: COMMANDS["send"],
    RecallCommand: COMMANDS["recall"],
    ReadCommand: COMMANDS["read"],
    HeartbeatCommand: COMMANDS["heartbeat"],
    ReceiptCommand: COMMANDS["receipt"],
    TypingCommand: COMMANDS["typing"],
}


def command_parse(name: object, data: Any, request_id: RequestId = None) -> Command:
    """The named command, its input validated (InvalidField, FrameError). Frame types
    other apps registered (messaging.services.kinds: red packets) parse as an
    ExtensionCommand their handler validates."""
    spec = COMMANDS.get(name) if isinstance(name, str) else None
    if spec is not None:
        return spec.parse(data, request_id)
    if isinstance(name, str) and frame_handler(name) is not None:
        return ExtensionCommand(request_id, name, dict(data))
    raise protocol.UnknownFrameType(
        f"Unknown frame type {name!r}.", details={"known": [*COMMANDS, *frame_types()]}
    )


def frame_command(frame: protocol.Frame) -> Command:
    """A websocket frame as a command; its errors answer with the frame's id."""
    text_check(frame.data, raw=frame.raw)
    return command_parse(frame.data.get("type"), frame.data, frame.request_id)


def command_priority(command: Command) -> Business:
    if isinstance(command, ExtensionCommand):
        return frame_priority(command.frame_type)
    return _BY_TYPE[type(command)].priority


@dataclass(frozen=True, slots=True)
class Pending:
    """The rest of a command (messaging.services.kinds.Serialised): `run`, one at a
    time per `key` in this process, then `then(run's result)` out of that line.
    The websocket runs them off its worker threads; command_run calls them at once."""

    key: str
    run: Callable[[], Any]
    then: Callable[[Any], Answer]

    def finish(self) -> Answer:
        return self.then(self.run())


def command_start(command: Command, context: Context) -> Answer | Pending:
    """Run a parsed command as far as it goes without waiting on a serialised
    step (blocking: database and Redis; the websocket calls this in a worker thread)."""
    if isinstance(command, ExtensionCommand):
        return _extension(command, context)
    return _BY_TYPE[type(command)].handle(command, context)


async def command_on_loop(command: Command, context: Context) -> Answer | None:
    """Run a command that has a path on the event loop (a send:
    services.sending_async, which itself falls back to a worker thread where it
    must; a sync: selectors_async, where it applies); None for the others, which
    the caller runs with command_start."""
    ticket = context.ticket
    if isinstance(command, SyncCommand):
        page = await sync_read_wire_async(
            ticket=ticket,
            user_id=ticket.user_id,
            since=command.key,
            limit=command.limit,
            client_version=context.client_version,
        )
        return None if page is None else _sync_answer(page)
    if not isinstance(command, SendCommand):
        return None
    ack = await message_send_async(
        ticket=ticket,
        user_id=ticket.user_id,
        conversation_id=command.conversation_id,
        client_msg_id=command.client_msg_id,
        content=command.content,
    )
    return Answer("send.ack", protocol.ack_body(ack), nest="message", created=not ack.duplicate)


def command_run(command: Command, context: Context) -> Answer:
    """Run a parsed command to its answer (blocking)."""
    started = command_start(command, context)
    return started.finish() if isinstance(started, Pending) else started


def _extension(command: ExtensionCommand, context: Context) -> Answer | Pending:
    handler = frame_handler(command.frame_type)
    if handler is None:  # unregistered since parsing: cannot happen in practice
        raise protocol.UnknownFrameType(f"Unknown frame type {command.frame_type!r}.")
    answer = handler(context.ticket, command.data)
    if isinstance(answer, Serialised):
        then = answer.then
        return Pending(answer.key, answer.run, lambda result: _extension_answer(then(result)))
    return _extension_answer(answer)


def _extension_answer(frame: dict[str, Any]) -> Answer:
    answer = dict(frame)
    reply = answer.pop("type")
    return Answer(reply, answer)


def command_execute(name: str, data: Any, context: Context) -> Answer:
    """Parse and run: what an HTTP view does with its request body."""
    return command_run(command_parse(name, data), context)
