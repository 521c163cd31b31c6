"""The shapes red packets take on the wire (websocket frames and HTTP bodies share
them; docs/protocol.md and docs/api.md describe them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from redpackets.services.grabbing import GrabResult
from redpackets.services.sending import PacketRequest, SentPacket
from redpackets.services.updates import bubble_state
from wechat_core.errors import InvalidInput


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds") if moment else None


def grab_json(result: GrabResult) -> dict[str, Any]:
    packet, grab = result.packet, result.grab
    return {
        "outcome": result.outcome,
        "packet": packet.pk,
        "state": bubble_state(packet),
        "amount": grab.amount if grab is not None else None,
        "credit": str(grab.credit_state) if grab is not None else None,
        "opened_at": _iso(grab.created_at) if grab is not None else None,
    }


def sent_json(sent: SentPacket) -> dict[str, Any]:
    packet = sent.packet
    return {
        "packet": packet.pk,
        "message": packet.message_id,
        "conversation": packet.conversation_id,
        "client_id": packet.client_id,
        "kind": packet.kind,
        "total_amount": packet.total_amount,
        "shares": packet.shares,
        "greeting": packet.greeting,
        "cover": packet.cover,
        "cover_fallback": sent.cover_fallback,
        "created_at": _iso(packet.created_at),
        "expires_at": _iso(packet.expires_at),
        "duplicate": sent.duplicate,
    }


def _field(data: Mapping[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = data.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidInput(
            f"{name} must be {'an integer' if kind is int else 'a string'}.",
            details={"field": name},
        )
    return value


def packet_id_from(data: Mapping[str, Any]) -> int:
    packet = _field(data, "packet", int)
    if packet < 1:
        raise InvalidInput("packet must be a packet id.", details={"field": "packet"})
    return int(packet)


def request_from(data: Mapping[str, Any]) -> PacketRequest:
    """A send request from a frame's or body's fields (types checked here, limits by
    the service)."""
    return PacketRequest(
        conversation_id=_field(data, "conversation", int),
        client_id=_field(data, "client_id", str),
        kind=_field(data, "kind", str),
        total_amount=_field(data, "total_amount", int),
        shares=_field(data, "shares", int),
        greeting=_field(data, "greeting", str, required=False) or "",
        cover=_field(data, "cover", str, required=False),
        surname=_field(data, "surname", str, required=False),
    )
