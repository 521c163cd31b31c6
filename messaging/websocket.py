"""The SYNC websocket: frame <-> service call, nothing else (docs/protocol.md).

At connect the client presents its ticket (subprotocol `ticket.<ticket>` next to
`wechat.sync.v1`, or an Authorization header from non-browser clients). The
link listens on the process hub to its user's group, for notifies and for
revocations of its ticket (which close it). Each command frame is
parsed and run by the command dispatcher (messaging.commands, which the HTTP
views share), its service call in a worker thread (a plain text send runs on
the event loop with group commit: services.sending_async; so does the sync read of
a current client on PostgreSQL: selectors_async); a bad frame gets an error
frame and the connection stays open.

This is a plain ASGI application rather than a Channels consumer: an idle link
is one small object and the server's own task, with no channel or receive task
of its own (wechat_core.realtime explains the hub; docs/performance.md has the
memory per connection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from django.conf import settings

from accounts.clientflags import device_flags
from accounts.exceptions import TicketExpired, TicketInvalid, TicketRevoked
from accounts.tickets import ticket_verify
from accounts.types import VerifiedTicket
from messaging import protocol, selectors
from messaging.commands import (
    Answer,
    Context,
    Pending,
    command_on_loop,
    command_start,
    frame_command,
)
from messaging.exceptions import Throttled
from messaging.wire import HelloFrame, NotifyFrame, ThrottleFrame, TypingFrame
from wechat_core.admission.websocket import (
    CLOSE_OVERLOADED,
    connect_refusal,
    frame_refusal,
    tier,
)
from wechat_core.datacenters import CLOSE_HOME, HomeElsewhere, home_frame
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


_serial_executor: ThreadPoolExecutor | None = None
# Per key with work pending (messaging.commands.Pending): its lock and how many
# calls hold or wait for it; dropped when none does.
_serial_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}


async def _serialised(pending: Pending) -> Answer:
    """Run `pending.run` one at a time per key in this process, in threads of its
    own (a step that waits on a database lock, a hot packet's row, holds at most
    one thread per key, and none of those that answer every other frame), then
    `pending.then` once the key's next call may start."""
    global _serial_executor
    if _serial_executor is None:
        _serial_executor = ThreadPoolExecutor(
            max_workers=settings.MESSAGING_SERIAL_THREADS, thread_name_prefix="serial"
        )
    lock, users = _serial_locks.setdefault(pending.key, (asyncio.Lock(), [0]))
    users[0] += 1
    try:
        async with lock:
            run = database_sync_to_async(
                pending.run, thread_sensitive=False, executor=_serial_executor
            )
            result = await run()
    finally:
        users[0] -= 1
        if users[0] == 0:
            del _serial_locks[pending.key]
    answer: Answer = await _in_thread(pending.then)(result)
    return answer


def _spawn(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _dumps(frame: Mapping[str, Any]) -> str:
    # orjson: several times faster than json for the frames of the send path.
    return orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS).decode()


def ticket_from_scope(scope: dict[str, Any]) -> str:
    """The ticket text: the `ticket.<ticket>` subprotocol, else the Authorization header."""
    for name in scope.get("subprotocols", []):
        if name.startswith(protocol.TICKET_SUBPROTOCOL_PREFIX):
            return str(name.removeprefix(protocol.TICKET_SUBPROTOCOL_PREFIX))
    for header, value in scope.get("headers", []):
        if header == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() in ("ticket", "bearer"):
                return str(token).strip()
    return ""


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
    )

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
        token = ticket_from_scope(scope)
        # The protocol is selected whenever the client offers it, wherever the
        # ticket came from (browsers fail a handshake that selects none of the
        # offered subprotocols), and never when it is not offered.
        offered = protocol.SUBPROTOCOL in scope.get("subprotocols", ())
        subprotocol = protocol.SUBPROTOCOL if offered else None
        accept = {"type": "websocket.accept", "subprotocol": subprotocol}
        if refusal := connect_refusal(scope):  # FastReject: before any work (docs/overload.md)
            await send(accept)
            await send({"type": "websocket.send", "text": _dumps(refusal)})
            await send({"type": "websocket.close", "code": CLOSE_OVERLOADED})
            return None
        try:
            if not token:
                raise TicketInvalid("Present a ticket: subprotocol ticket.<ticket>.")
            ticket: VerifiedTicket = await _in_thread(ticket_verify)(token=token)
        except HomeElsewhere as elsewhere:  # docs/protocol.md §2b: go home, resume there
            await send(accept)
            await send({"type": "websocket.send", "text": _dumps(home_frame(elsewhere))})
            await send({"type": "websocket.close", "code": CLOSE_HOME})
            return None
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
            flags = await _in_thread(device_flags)(ticket=ticket, user_id=ticket.user_id)
        except ServiceError as error:
            self.detach()
            await self._send(accept)
            await self.write(protocol.error_frame(error))
            await self.close(CLOSE_TICKET)
            return None
        await self._send(accept)
        if _watchdog is None or _watchdog.done():
            _watchdog = asyncio.get_running_loop().create_task(_watch_idle_links())
        hello: HelloFrame = {
            "type": "hello",
            "protocol": protocol.PROTOCOL_VERSION,
            "user": ticket.user_id,
            "device": ticket.device_id,
            "max_seq": max_seq,
            "heartbeat": settings.MESSAGING_HEARTBEAT_SECONDS,
            "flags": flags,
            # As in heartbeat.ack: a client refused a moment ago learns at once whether
            # the server still sheds load, not a heartbeat later (its receipts wait on it).
            "tier": tier(),
        }
        await self.write(hello)
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
        elif kind == "typing" and self.accepted:
            typing: TypingFrame = {
                "type": "typing",
                "conversation": int(message["conversation"]),
                "user": int(message["user"]),
            }
            _spawn(self.write(typing))
        elif kind == "ticket.revoked" and self.ticket.ticket_id in message.get("tickets", ()):
            self._revoked = True
            if self.accepted:
                _spawn(self._close_revoked())

    async def _write_notify(self) -> None:
        seq, self._notify_seq = self._notify_seq, 0
        notify: NotifyFrame = {"type": "notify", "seq": seq}
        await self.write(notify)

    async def _close_revoked(self) -> None:
        await self.write(protocol.error_frame(TicketRevoked()))
        await self.close(CLOSE_TICKET)

    async def write(self, frame: Mapping[str, Any]) -> None:
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
            frame = protocol.frame_read(raw)
            request_id = frame.request_id  # echoed by every error from here on
            if refusal := frame_refusal(frame.data.get("type"), self.ticket.user_id):
                await self.write({**refusal, "id": request_id})  # FastReject (docs/overload.md)
                return
            await self._handle(frame_command(frame))
        except Throttled as throttled:
            throttle: ThrottleFrame = {
                "type": "throttle",
                "id": request_id,
                "tier": throttled.tier,
                "retry_after": throttled.retry_after,
            }
            await self.write(throttle)
        except (TicketRevoked, TicketExpired) as error:
            await self.write(protocol.error_frame(error, request_id))
            await self.close(CLOSE_TICKET)
        except ServiceError as error:
            await self.write(protocol.error_frame(error, request_id))
        except Exception:
            logger.exception("SYNC frame failed")
            message = "Something went wrong on our side; it has been logged. Retry the frame."
            await self.write(
                {
                    "type": "error",
                    "id": request_id,
                    "code": "server_error",
                    "message": message,
                    "details": {},
                }
            )

    async def _handle(self, command: protocol.Command) -> None:
        context = Context(self.ticket, self.client_version)
        answer = await command_on_loop(command, context)
        if answer is None:
            started = await _in_thread(command_start)(command, context)
            answer = await _serialised(started) if isinstance(started, Pending) else started
        if answer.text is not None:
            await self.write_text(answer.text(command.request_id))
        else:
            await self.write(answer.frame(command.request_id))
