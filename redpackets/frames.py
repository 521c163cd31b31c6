"""Websocket frames of red packets (registered with messaging in AppConfig.ready;
docs/protocol.md): thin, each calling one service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts.types import VerifiedTicket
from messaging.services.kinds import Serialised
from redpackets import wire
from redpackets.services.grabbing import GrabPending, GrabResult, packet_grab_start
from redpackets.services.sending import packet_send


def send_frame(ticket: VerifiedTicket, data: Mapping[str, Any]) -> dict[str, Any]:
    sent = packet_send(ticket=ticket, user_id=ticket.user_id, request=wire.request_from(data))
    return {"type": "redpacket.send.ack", **wire.sent_json(sent)}


def grab_frame(ticket: VerifiedTicket, data: Mapping[str, Any]) -> dict[str, Any] | Serialised:
    """The gate answers here; a grab it lets through finishes serialised per packet
    (messaging.services.kinds.Serialised), off the threads answering the losers."""
    started = packet_grab_start(
        ticket=ticket, user_id=ticket.user_id, packet_id=wire.packet_id_from(data)
    )
    if isinstance(started, GrabPending):
        return Serialised(
            started.serial_key, started.take, lambda taken: _grab_ack(started.complete(taken))
        )
    return _grab_ack(started)


def _grab_ack(result: GrabResult) -> dict[str, Any]:
    return {"type": "redpacket.grab.ack", **wire.grab_json(result)}
