"""Red packets in chats (DESIGN.md §11, docs/redpackets.md): sending into escrow,
grabbing, crediting on payout_fast, refunds, reconciliation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig
from django.conf import settings


def describe_packet(body: Mapping[str, Any]) -> str:
    greeting = str(body.get("greeting") or "Best wishes")
    return f"[Red packet] {greeting} \u2014 open it in the latest version"


def describe_refund(body: Mapping[str, Any]) -> str:
    amount = int(body.get("amount") or 0)
    where = "its activity's prize pool" if body.get("refunded_to") == "budget" else "its sender"
    return (
        f"A red packet expired: {body.get('unopened', 0)} unopened share(s), "
        f"{amount // 100}.{amount % 100:02d} CNY, went back to {where}"
    )


class RedpacketsConfig(AppConfig):
    name = "redpackets"
    verbose_name = "Red packets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from messaging.services.kinds import (
            MessageKindSpec,
            frame_handler_register,
            message_kind_register,
            system_event_register,
        )
        from redpackets import frames
        from redpackets.services.refunds import REFUND_EVENT
        from redpackets.services.sending import MESSAGE_KIND

        message_kind_register(
            MessageKindSpec(
                kind=MESSAGE_KIND,
                min_client_version=settings.REDPACKETS_MIN_CLIENT_VERSION,
                describe=describe_packet,
                counts_unread=True,
            )
        )
        system_event_register(REFUND_EVENT, describe_refund)
        frame_handler_register("redpacket.send", frames.send_frame)
        frame_handler_register("redpacket.grab", frames.grab_frame)
        frame_handler_register("redpacket.open", frames.grab_frame)
        # Declares the reconciliation gauge in every process (web, workers, beat).
        import redpackets.services.reconcile  # noqa: F401
