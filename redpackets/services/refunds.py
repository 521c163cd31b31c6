"""Refunds of unopened shares, REDPACKETS_EXPIRE_SECONDS (24 h) after sending.

`packets_refund_expired` (beat, every REDPACKETS_REFUND_SWEEP_SECONDS) refunds
each expired open packet in its own transaction, under the packet's row lock:
the undecided remainder goes from the escrow back to the sender's wallet, or to
the packet's `refund_account` when it names one (a shake activity's budget: the
pool its passed-on shares came from), under the ledger key `redpacket:<id>:refund`;
the packet becomes `expired`, and a `system` message (event `redpacket_refunded`,
`refunded_to` `sender` or `budget`) in the chat tells the sender and the members.
Then every member's devices get the bubble's `expired` state (a second
transaction: the notice's delivery locks the same sequences).
Idempotent: a packet already expired is skipped; a retry moves nothing twice.
Grabs made before the expiry keep their amounts and are credited as usual.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.models import MessageKind
from messaging.services.events import conversation_lock, event_append
from redpackets.gate import gate_drop
from redpackets.models import Packet, PacketState
from redpackets.services.updates import members_of, updates_write
from wallet.models import TransactionKind
from wallet.services.ledger import ledger_transfer
from wallet.services.wallets import wallet_credit
from wallet.types import Leg
from wechat_core.metrics import counter
from wechat_core.transactions import after_commit

REFUNDS = counter(
    "redpackets_refunds_total",
    "Expired packets refunded (to their senders, or to the budget named as their refund account).",
    [],
)
REFUNDED_FEN = counter("redpackets_refunded_fen_total", "Fen refunded from expired packets.", [])
REFUND_EVENT = "redpacket_refunded"


def packet_refund(*, packet_id: int, now: dt.datetime | None = None) -> bool:
    """Refund one packet if it is open and expired; True if this call refunded it."""
    moment = now or timezone.now()
    with transaction.atomic():
        packet = Packet.objects.select_for_update(no_key=True).filter(pk=packet_id).first()
        if packet is None or packet.state != PacketState.OPEN or packet.expires_at > moment:
            return False
        amount, unopened = packet.remaining_amount, packet.remaining_shares
        _refund_move(packet, amount, unopened)
        packet.state, packet.refunded_at = PacketState.EXPIRED, moment
        packet.refunded_amount, packet.remaining_amount = amount, 0
        packet.save(update_fields=["state", "refunded_at", "refunded_amount", "remaining_amount"])
        event_append(
            conversation_lock(packet.conversation_id),
            sender_id=None,
            kind=MessageKind.SYSTEM,
            body={
                "event": REFUND_EVENT,
                "packet_id": packet.pk,
                "message_id": packet.message_id,
                "user": packet.sender_id,
                "amount": amount,
                "unopened": unopened,
                "refunded_to": "sender" if packet.refund_account_id is None else "budget",
            },
        )
        refunded = packet
        after_commit(lambda: gate_drop(refunded), name="redpacket_gate_drop")
    REFUNDS.inc()
    REFUNDED_FEN.inc(amount=amount)
    with transaction.atomic():
        updates_write(packet.pk, members_of(packet.conversation_id))
    return True


def _refund_move(packet: Packet, amount: int, unopened: int) -> None:
    key = f"redpacket:{packet.pk}:refund"
    reason = f"Red packet refund: {unopened} unopened share(s)"
    if packet.refund_account_id is None:
        wallet_credit(
            user_id=packet.sender_id,
            from_account_id=packet.escrow_id,
            amount=amount,
            idempotency_key=key,
            kind=TransactionKind.PACKET_REFUND,
            reason=reason,
            metadata={"packet": packet.pk},
        )
        return
    ledger_transfer(
        idempotency_key=key,
        kind=TransactionKind.PACKET_REFUND,
        reason=reason,
        legs=[Leg(packet.escrow_id, -amount), Leg(packet.refund_account_id, amount)],
        metadata={"packet": packet.pk, "to": "budget"},
    )


def packets_refund_expired(*, now: dt.datetime | None = None) -> int:
    """Refund every expired open packet (a batch per run); returns how many."""
    moment = now or timezone.now()
    due = list(
        Packet.objects.filter(state=PacketState.OPEN, expires_at__lte=moment)
        .order_by("expires_at")
        .values_list("pk", flat=True)[: settings.REDPACKETS_SWEEP_BATCH]
    )
    return sum(packet_refund(packet_id=packet_id, now=moment) for packet_id in due)
