"""The SYNC websocket: frame <-> service call, nothing else (docs/protocol.md).

At connect the client presents its ticket (subprotocol `ticket.<ticket>` next to
`wechat.sync.v1`, or an Authorization header from non-browser clients). The
consumer joins the user's group, so `notify` frames reach it, and the ticket's
group, so a revocation closes it. Each command frame is parsed by
messaging.protocol and handed to a service in a worker thread; a bad frame gets
an error frame and the connection stays open.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from typing import Any

from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from channels.generic.websocket import AsyncWebsocketConsumer  # type: ignore[import-untyped]
from django.conf import settings

from accounts.exceptions import TicketExpired, TicketInvalid, TicketRevoked
from accounts.tickets import ticket_group, ticket_verify
from accounts.types import VerifiedTicket
from messaging import protocol, selectors
from messaging.exceptions import Throttled
from messaging.protocol import (
    ReadCommand,
    RecallCommand,
    SendCommand,
    SyncCommand,
)
from messaging.services.sending import conversation_read, message_recall, message_send
from messaging.services.synclog import user_group
from wechat_core.errors import ServiceError

CLOSE_TICKET = 4001  # the ticket is missing, invalid, expired or revoked
CLOSE_IDLE = 4008  # no frame for too long (heartbeats stopped)

_live: weakref.WeakSet[SyncConsumer] = weakref.WeakSet()
_watchdog: asyncio.Task[None] | None = None


def _in_thread(function: Any) -> Any:
    # thread_sensitive=False: calls from different connections run in parallel
    # worker threads instead of queueing on one.
    return database_sync_to_async(function, thread_sensitive=False)


def _ticket_from_scope(scope: dict[str, Any]) -> tuple[str, bool]:
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


async def _watch_idle_connections() -> None:
    """One task per process closes connections whose heartbeats stopped."""
    while True:
        await asyncio.sleep(settings.MESSAGING_HEARTBEAT_SECONDS / 2)
        deadline = time.monotonic() - settings.MESSAGING_HEARTBEAT_SECONDS * 2.5
        for consumer in list(_live):
            if consumer.last_frame_at < deadline:
                await consumer.close(code=CLOSE_IDLE)


class SyncConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    ticket: VerifiedTicket
    client_version: str
    last_frame_at: float

    async def connect(self) -> None:
        global _watchdog
        token, as_subprotocol = _ticket_from_scope(self.scope)
        subprotocol = protocol.SUBPROTOCOL if as_subprotocol else None
        try:
            if not token:
                raise TicketInvalid("Present a ticket: subprotocol ticket.<ticket>.")
            self.ticket = await _in_thread(ticket_verify)(token=token)
            user_id = self.ticket.user_id
            max_seq = await _in_thread(selectors.sync_max_seq)(ticket=self.ticket, user_id=user_id)
            self.client_version = await _in_thread(selectors.device_client_version)(
                ticket=self.ticket
            )
        except ServiceError as error:
            await self.accept(subprotocol)
            await self._send(protocol.error_frame(error))
            await self.close(code=CLOSE_TICKET)
            return
        await self.channel_layer.group_add(user_group(user_id), self.channel_name)
        await self.channel_layer.group_add(ticket_group(self.ticket.ticket_id), self.channel_name)
        await self.accept(subprotocol)
        self.last_frame_at = time.monotonic()
        _live.add(self)
        if _watchdog is None or _watchdog.done():
            _watchdog = asyncio.get_running_loop().create_task(_watch_idle_connections())
        await self._send(
            {
                "type": "hello",
                "protocol": protocol.PROTOCOL_VERSION,
                "user": user_id,
                "device": self.ticket.device_id,
                "max_seq": max_seq,
                "heartbeat": settings.MESSAGING_HEARTBEAT_SECONDS,
            }
        )

    async def disconnect(self, code: int) -> None:
        _live.discard(self)
        if hasattr(self, "ticket"):
            await self.channel_layer.group_discard(
                user_group(self.ticket.user_id), self.channel_name
            )
            await self.channel_layer.group_discard(
                ticket_group(self.ticket.ticket_id), self.channel_name
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_frame_at = time.monotonic()
        request_id = None
        try:
            command = protocol.parse_frame(text_data if text_data is not None else bytes_data)
            request_id = command.request_id
            await self._handle(command)
        except Throttled as throttled:
            await self._send(
                {"type": "throttle", "id": request_id, **throttled.details_for_frame()}
            )
        except (TicketRevoked, TicketExpired) as error:
            await self._send(protocol.error_frame(error, request_id))
            await self.close(code=CLOSE_TICKET)
        except ServiceError as error:
            await self._send(protocol.error_frame(error, request_id))

    async def _handle(self, command: protocol.Command) -> None:
        ticket, user_id = self.ticket, self.ticket.user_id
        if isinstance(command, SyncCommand):
            page = await _in_thread(selectors.sync_read)(
                ticket=ticket, user_id=user_id, since=command.key, limit=command.limit,
                client_version=self.client_version,
            )  # fmt: skip
            frame = {"type": "sync.result", "id": command.request_id, **protocol.sync_body(page)}
        elif isinstance(command, SendCommand):
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
            frame = {
                "type": "read.ack",
                "id": command.request_id,
                "conversation": command.conversation_id,
                "read_seq": read_seq,
            }
        else:  # HeartbeatCommand
            max_seq = await _in_thread(selectors.sync_max_seq)(ticket=ticket, user_id=user_id)
            frame = {
                "type": "heartbeat.ack",
                "id": command.request_id,
                "interval": settings.MESSAGING_HEARTBEAT_SECONDS,
                "max_seq": max_seq,
            }
        await self._send(frame)

    async def sync_notify(self, event: dict[str, Any]) -> None:
        await self._send({"type": "notify", "seq": event["seq"]})

    async def ticket_revoked(self, event: dict[str, Any]) -> None:
        await self._send(protocol.error_frame(TicketRevoked()))
        await self.close(code=CLOSE_TICKET)

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))
