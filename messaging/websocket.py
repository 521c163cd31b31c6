"""The SYNC websocket: frame <-> service call, nothing else (docs/protocol.md).

At connect the client presents its ticket (subprotocol `ticket.<ticket>` next to
`wechat.sync.v1`, or an Authorization header from non-browser clients). The
link listens on the process hub to its user's group, for notifies and for
revocations of its ticket (which close it). Each command frame is
parsed by messaging.protocol and handed to a service in a worker thread; a bad
frame gets an error frame and the connection stays open.

This is a plain ASGI application rather than a Channels consumer: an idle link
is one small object and the server's own task, with no channel or receive task
of its own (wechat_core.realtime explains the hub; docs/performance.md has the
memory per connection).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from django.conf import settings

from accounts.exceptions import TicketExpired, TicketInvalid, TicketRevoked
from accounts.tickets import ticket_verify
from accounts.types import VerifiedTicket
from grayrelease.selectors import device_flags_json
from messaging import protocol, selectors
from messaging.exceptions import Throttled
from messaging.protocol import (
    ReadCommand,
    RecallCommand,
    ReceiptCommand,
    SendCommand,
    SyncCommand,
)
from messaging.services.receipts import receipts_record
from messaging.services.sending import conversation_read, message_recall, message_send
from wechat_core.errors import ServiceError
from wechat_core.realtime import hub, user_group

logger = logging.getLogger(__name__)

CLOSE_TICKET = 4001  # the ticket is missing, invalid, expired or revoked
CLOSE_IDLE = 4008  # no frame for too long (heartbeats stopped)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

# Open links of this process, for the idle watchdog; and the tasks links start
# (asyncio keeps only weak references to tasks).
_links: set[SyncLink] = set()
_tasks: set[asyncio.Task[None]] = set()
_watchdog: asyncio.Task[None] | None = None


def _in_thread(function: Any) -> Any:
    # thread_sensitive=False: calls from different connections run in parallel
    # worker threads instead of queueing on one.
    return database_sync_to_async(function, thread_sensitive=False)


def _spawn(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def ticket_from_scope(scope: dict[str, Any]) -> tuple[str, bool]:
    """The ticket text, and whether it came as a subprotocol (so one must be chosen)."""
    for name in scope.get("subprotocols", []):
        if name.startswith(protocol.TICKET_SUBPROTOCOL_PREFIX):
            return name.removeprefix(protocol.TICKET_SUBPROTOCOL_PREFIX), True
    for header, value in scope.get("headers", []):
        if header == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() in ("ticket", "bearer"):
                return token.strip(), False
    return "", False


async def sync_websocket(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The ASGI application behind /ws/sync."""
    if (await receive())["type"] != "websocket.connect":
        return
    link = await SyncLink.open(scope, send)
    if link is None:
        return
    try:
        while not link.closed:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                break
            if event["type"] == "websocket.receive":
                await link.on_frame(event.get("text") or event.get("bytes"))
    finally:
        link.detach()


async def _watch_idle_links() -> None:
    """One task per process closes links whose heartbeats stopped."""
    while True:
        await asyncio.sleep(settings.MESSAGING_HEARTBEAT_SECONDS / 2)
        deadline = time.monotonic() - settings.MESSAGING_HEARTBEAT_SECONDS * 2.5
        for link in [link for link in _links if link.last_frame_at < deadline]:
            await link.close(CLOSE_IDLE)


class SyncLink:
    """One open SYNC websocket of an authenticated device."""

    __slots__ = (
        "_notify_seq",
        "_revoked",
        "_send",
        "accepted",
        "client_version",
        "closed",
        "last_frame_at",
        "ticket",
    )  # fmt: skip

    def __init__(self, send: Send, ticket: VerifiedTicket) -> None:
        self._send = send
        self.ticket = ticket
        self.client_version = ""
        self.last_frame_at = time.monotonic()
        self.accepted = False  # until the hello is written, notices are only noted
        self.closed = False
        self._notify_seq = 0  # above zero while a notify is waiting to be written
        self._revoked = False

    @classmethod
    async def open(cls, scope: dict[str, Any], send: Send) -> SyncLink | None:
        """Authenticate and accept; on a bad ticket, explain and close (4001)."""
        token, as_subprotocol = ticket_from_scope(scope)
        subprotocol = protocol.SUBPROTOCOL if as_subprotocol else None
        accept = {"type": "websocket.accept", "subprotocol": subprotocol}
        try:
            if not token:
                raise TicketInvalid("Present a ticket: subprotocol ticket.<ticket>.")
            ticket: VerifiedTicket = await _in_thread(ticket_verify)(token=token)
        except ServiceError as error:
            await send(accept)
            await send({"type": "websocket.send", "text": _dumps(protocol.error_frame(error))})
            await send({"type": "websocket.close", "code": CLOSE_TICKET})
            return None
        scope["auth"] = ticket  # as request.auth: who this is, for the framework's metrics
        link = cls(send, ticket)
        try:
            return await link._start(accept)
        except BaseException:
            link.detach()
            raise

    async def _start(self, accept: dict[str, Any]) -> SyncLink | None:
        global _watchdog
        ticket = self.ticket
        # Listen first, then read max_seq: an entry committed in between is
        # either counted in the hello or announced by a notify.
        await hub().join(user_group(ticket.user_id), self.on_group_message)
        _links.add(self)
        try:
            max_seq = await _in_thread(selectors.sync_max_seq)(
                ticket=ticket, user_id=ticket.user_id
            )
            self.client_version = selectors.device_client_version(ticket=ticket)
            flags = await _in_thread(device_flags_json)(ticket=ticket, user_id=ticket.user_id)
        except ServiceError as error:
            self.detach()
            await self._send(accept)
            await self.write(protocol.error_frame(error))
            await self.close(CLOSE_TICKET)
            return None
        await self._send(accept)
        if _watchdog is None or _watchdog.done():
            _watchdog = asyncio.get_running_loop().create_task(_watch_idle_links())
        await self.write(
            {
                "type": "hello",
                "protocol": protocol.PROTOCOL_VERSION,
                "user": ticket.user_id,
                "device": ticket.device_id,
                "max_seq": max_seq,
                "heartbeat": settings.MESSAGING_HEARTBEAT_SECONDS,
                "flags": flags,
            }
        )
        self.accepted = True
        if self._revoked:
            await self._close_revoked()
        elif self._notify_seq > max_seq:
            _spawn(self._write_notify())
        else:
            self._notify_seq = 0
        return self

    def detach(self) -> None:
        _links.discard(self)
        hub().leave(user_group(self.ticket.user_id), self.on_group_message)

    # --- Server-initiated frames --------------------------------------------------------

    def on_group_message(self, message: dict[str, Any]) -> None:
        """Called by the hub, in the event loop; never blocks."""
        kind = message.get("type")
        if kind == "sync.notify":
            pending = self._notify_seq
            self._notify_seq = max(pending, int(message["seq"]))
            # Otherwise the waiting write picks up the newer seq, or the hello does.
            if not pending and self.accepted:
                _spawn(self._write_notify())
        elif kind == "ticket.revoked" and self.ticket.ticket_id in message.get("tickets", ()):
            self._revoked = True
            if self.accepted:
                _spawn(self._close_revoked())

    async def _write_notify(self) -> None:
        seq, self._notify_seq = self._notify_seq, 0
        await self.write({"type": "notify", "seq": seq})

    async def _close_revoked(self) -> None:
        await self.write(protocol.error_frame(TicketRevoked()))
        await self.close(CLOSE_TICKET)

    async def write(self, frame: dict[str, Any]) -> None:
        await self.write_text(_dumps(frame))

    async def write_text(self, text: str) -> None:
        if self.closed:
            return
        try:
            await self._send({"type": "websocket.send", "text": text})
        except Exception:  # the client is gone; its disconnect event ends the link
            self.closed = True

    async def close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        self.detach()
        try:
            await self._send({"type": "websocket.close", "code": code})
        except Exception:
            logger.debug("close after the client left", exc_info=True)

    # --- Client frames ----------------------------------------------------------------

    async def on_frame(self, raw: str | bytes | None) -> None:
        self.last_frame_at = time.monotonic()
        request_id = None
        try:
            command = protocol.parse_frame(raw)
            request_id = command.request_id
            await self._handle(command)
        except Throttled as throttled:
            await self.write(
                {"type": "throttle", "id": request_id, **throttled.details_for_frame()}
            )
        except (TicketRevoked, TicketExpired) as error:
            await self.write(protocol.error_frame(error, request_id))
            await self.close(CLOSE_TICKET)
        except ServiceError as error:
            await self.write(protocol.error_frame(error, request_id))
        except Exception:
            logger.exception("SYNC frame failed")
            message = "Something went wrong on our side; it has been logged. Retry the frame."
            await self.write(
                {"type": "error", "id": request_id, "code": "server_error", "message": message,
                 "details": {}}
            )  # fmt: skip

    async def _handle(self, command: protocol.Command) -> None:
        ticket, user_id = self.ticket, self.ticket.user_id
        if isinstance(command, SyncCommand):
            page = await _in_thread(selectors.sync_read_wire)(
                ticket=ticket, user_id=user_id, since=command.key, limit=command.limit,
                client_version=self.client_version,
            )  # fmt: skip
            await self.write_text(protocol.sync_json(page, frame_id=command.request_id, frame=True))
            return
        if isinstance(command, SendCommand):
            ack = await _in_thread(message_send)(
                ticket=ticket, user_id=user_id, conversation_id=command.conversation_id,
                client_msg_id=command.client_msg_id, content=command.content,
            )  # fmt: skip
            frame = {
                "type": "send.ack",
                "id": command.request_id,
                "message": protocol.ack_body(ack),
            }
        elif isinstance(command, RecallCommand):
            ack = await _in_thread(message_recall)(
                ticket=ticket, user_id=user_id, message_id=command.message_id
            )
            frame = {
                "type": "recall.ack",
                "id": command.request_id,
                "message": protocol.ack_body(ack),
            }
        elif isinstance(command, ReadCommand):
            read_seq = await _in_thread(conversation_read)(
                ticket=ticket, user_id=user_id, conversation_id=command.conversation_id,
                seq=command.seq,
            )  # fmt: skip
            frame = {"type": "read.ack", "id": command.request_id,
                     "conversation": command.conversation_id, "read_seq": read_seq}  # fmt: skip
        elif isinstance(command, ReceiptCommand):
            counted = await _in_thread(receipts_record)(
                ticket=ticket, user_id=user_id, shown=command.shown
            )
            frame = {"type": "receipt.ack", "id": command.request_id, "counted": counted}
        else:  # HeartbeatCommand
            max_seq = await _in_thread(selectors.sync_max_seq)(ticket=ticket, user_id=user_id)
            frame = {
                "type": "heartbeat.ack",
                "id": command.request_id,
                "interval": settings.MESSAGING_HEARTBEAT_SECONDS,
                "max_seq": max_seq,
            }
        await self.write(frame)
