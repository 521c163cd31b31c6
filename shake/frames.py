"""Websocket frames of shake activities (registered with messaging in AppConfig.ready;
docs/protocol.md): thin, each calling the engine or one service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts.types import VerifiedTicket
from shake import wire
from shake.access import engine
from shake.services.opening import prize_open
from shake.services.sharing import prize_shares_send


def shake_frame(ticket: VerifiedTicket, data: Mapping[str, Any]) -> dict[str, Any]:
    answer = engine().shake(
        user_id=ticket.user_id,
        record_token=wire.record_from(data),
        schedule_token=wire.schedule_from(data),
    )
    return {"type": "shake.result", **wire.shake_json(answer)}


def open_frame(ticket: VerifiedTicket, data: Mapping[str, Any]) -> dict[str, Any]:
    opened = prize_open(ticket=ticket, user_id=ticket.user_id, win=wire.win_from(data))
    return {"type": "shake.opened", **wire.opened_json(opened)}


def shares_frame(ticket: VerifiedTicket, data: Mapping[str, Any]) -> dict[str, Any]:
    prize_id, conversation_id, greeting = wire.shares_from(data)
    sent = prize_shares_send(
        ticket=ticket,
        user_id=ticket.user_id,
        prize_id=prize_id,
        conversation_id=conversation_id,
        greeting=greeting,
    )
    return {"type": "shake.shares_sent", **wire.shares_json(sent)}
