"""Crediting grabs to wallets (seed 004: the background half of 拆), exactly once.

`grab_credit` runs on the `payout_fast` queue after each grab commits: under the
grab's row lock it pays the amount from the packet's escrow into the grabber's
wallet (a ledger transaction keyed `redpacket:<packet>:grab:<grab>`, so even a
retry racing past the row lock moves nothing twice) and marks the grab
credited; the grabber's devices learn it from a `message_update` entry.

If the worker is down, grabs stay "arriving"; `grabs_credit_sweep` (beat) finds
those older than REDPACKETS_CREDIT_SWEEP_AFTER_SECONDS and enqueues them again,
and the daily reconciliation credits whatever is still missing.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from redpackets.models import CreditState, Grab
from redpackets.services.updates import updates_write
from wallet.models import TransactionKind
from wallet.services.wallets import wallet_credit
from wechat_core.metrics import counter
from wechat_core.transactions import task_enqueue

CREDITS = counter(
    "redpackets_credits_total",
    "Grabs credited to wallets, by how (task, sweep, reconcile).",
    ["via"],
)


def grab_idempotency_key(packet_id: int, grab_id: int) -> str:
    return f"redpacket:{packet_id}:grab:{grab_id}"


def grab_credit(*, grab_id: int, via: str = "task") -> bool:
    """Credit one grab if it is still arriving; True if this call credited it."""
    with transaction.atomic():
        grab = (
            Grab.objects.select_for_update(no_key=True)
            .select_related("packet")
            .filter(pk=grab_id)
            .first()
        )
        if grab is None or grab.credit_state == CreditState.CREDITED:
            return False
        packet = grab.packet
        sender = User.objects.filter(pk=packet.sender_id).values_list("nickname", flat=True)
        transfer = wallet_credit(
            user_id=grab.user_id,
            from_account_id=packet.escrow_id,
            amount=grab.amount,
            idempotency_key=grab_idempotency_key(packet.pk, grab.pk),
            kind=TransactionKind.PACKET_GRAB,
            reason=f"Red packet from {sender.first() or 'a friend'}"[:200],
            metadata={"packet": packet.pk, "grab": grab.pk},
        )
        grab.credit_state = CreditState.CREDITED
        grab.credited_at = timezone.now()
        grab.credit_transaction_id = transfer.transaction.pk
        grab.save(update_fields=["credit_state", "credited_at", "credit_transaction_id"])
        updates_write(packet.pk, [grab.user_id])
    CREDITS.inc(via)
    return True


def grabs_arriving(*, older_than_seconds: int, limit: int) -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        Grab.objects.filter(credit_state=CreditState.ARRIVING, created_at__lte=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def grabs_credit_sweep() -> int:
    """Enqueue the credit of every grab arriving for too long (a lost task, a
    worker that was down); returns how many."""
    stale = grabs_arriving(
        older_than_seconds=settings.REDPACKETS_CREDIT_SWEEP_AFTER_SECONDS,
        limit=settings.REDPACKETS_SWEEP_BATCH,
    )
    for grab_id in stale:
        task_enqueue("redpackets.tasks.credit_grab", grab_id)
    return len(stale)
