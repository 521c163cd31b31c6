"""Red packets in chats, their grabs, and the daily reconciliation reports
(docs/redpackets.md).

- A `Packet` is money in escrow (its own ledger account, `escrow`) carried by a
  `redpacket` message. Its shares are decided one at a time, when grabbed:
  `remaining_amount` / `remaining_shares` are what is still undecided. When it
  expires with shares left, `remaining_amount` moves back to the sender
  (`refunded_amount`) and is zero from then on (`remaining_shares` keeps the
  number of shares nobody opened). A packet a system sent on someone's behalf
  may name a `refund_account` instead (an activity's budget: a shake sponsor
  packet's passed-on shares go back to the pool they came from, not to the
  winner who passed them on).
- A `Grab` is one share, final once recorded: its amount is owed to the grabber
  from the escrow until the credit (a ledger transaction on the `payout_fast`
  queue) marks it credited. One per member per packet, one per share index.
- Always: total = Σ grabs + remaining_amount + refunded_amount, and
  escrow balance = total - Σ credited grabs - refunded_amount.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class PacketKind(models.TextChoices):
    LUCKY = "lucky", "Lucky (random split)"
    EQUAL = "equal", "Equal shares"


class PacketState(models.TextChoices):
    OPEN = "open", "Open"
    FINISHED = "finished", "All shares taken"
    EXPIRED = "expired", "Expired (the rest refunded)"


class Packet(models.Model):
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    conversation_id = models.BigIntegerField(db_index=True)
    # The redpacket message that carries it (set in the send's transaction).
    message_id = models.BigIntegerField(null=True, blank=True, unique=True)
    # The sender's idempotency key: a retried send returns this packet.
    client_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=PacketKind.choices)
    total_amount = models.BigIntegerField()
    shares = models.PositiveIntegerField()
    greeting = models.CharField(max_length=100, blank=True, default="")
    cover = models.JSONField(default=dict)
    escrow = models.ForeignKey("wallet.LedgerAccount", on_delete=models.PROTECT, related_name="+")
    # Where the refund goes instead of the sender's wallet: a budget account, set only
    # by a system caller of packet_send (never from a client's request); null: the sender.
    refund_account = models.ForeignKey(
        "wallet.LedgerAccount", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=8, choices=PacketState.choices, default=PacketState.OPEN)
    remaining_amount = models.BigIntegerField()
    remaining_shares = models.PositiveIntegerField()
    refunded_amount = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sender", "client_id"], name="packet_client_id_unique"),
            models.CheckConstraint(
                condition=Q(shares__gte=1) & Q(total_amount__gte=F("shares")),
                name="packet_at_least_one_fen_per_share",
            ),
            # After the refund, remaining_shares still counts the unopened shares
            # (for the bubble) while remaining_amount is zero.
            models.CheckConstraint(
                condition=(Q(remaining_amount__gte=F("remaining_shares")) | Q(state="expired"))
                & Q(remaining_shares__lte=F("shares"))
                & Q(remaining_amount__gte=0)
                & Q(refunded_amount__gte=0),
                name="packet_remaining_consistent",
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="packet_open_by_expiry")]

    def __str__(self) -> str:
        return f"red packet #{self.pk} ({self.kind}, {self.total_amount} fen / {self.shares})"


class CreditState(models.TextChoices):
    ARRIVING = "arriving", "Arriving (credit pending)"
    CREDITED = "credited", "Credited"


class Grab(models.Model):
    packet = models.ForeignKey(Packet, on_delete=models.PROTECT, related_name="grabs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    share_index = models.PositiveIntegerField()
    amount = models.BigIntegerField()
    created_at = models.DateTimeField()
    credit_state = models.CharField(
        max_length=8, choices=CreditState.choices, default=CreditState.ARRIVING
    )
    credited_at = models.DateTimeField(null=True, blank=True)
    # The ledger transaction that paid it (wallet.LedgerTransaction id).
    credit_transaction_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["packet", "user"], name="grab_once_per_member"),
            models.UniqueConstraint(fields=["packet", "share_index"], name="grab_once_per_share"),
            models.CheckConstraint(condition=Q(amount__gte=1), name="grab_at_least_one_fen"),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(credit_state="arriving"),
                name="grab_arriving_by_age",
            )
        ]

    def __str__(self) -> str:
        return f"grab of packet {self.packet_id} by {self.user_id}: {self.amount} fen"


class ReconciliationReport(models.Model):
    """One reconciliation pass (seed 003 对账): what was checked, what was wrong,
    what was redone, and what is still wrong (alerted)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    packets_checked = models.PositiveIntegerField(default=0)
    grabs_checked = models.PositiveIntegerField(default=0)
    problems_found = models.PositiveIntegerField(default=0)
    repaired = models.PositiveIntegerField(default=0)
    unresolved = models.PositiveIntegerField(default=0)
    ledger_ok = models.BooleanField(default=True)
    # [{"problem", "packet", "grab"?, "detail", "repaired"}], at most
    # REDPACKETS_RECONCILE_REPORT_MAX of them.
    problems = models.JSONField(default=list)
    ledger = models.JSONField(default=dict)  # wallet_reconcile's summary

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        verdict = "ok" if self.unresolved == 0 and self.ledger_ok else "PROBLEMS"
        return f"reconciliation {self.started_at:%Y-%m-%d %H:%M} {verdict}"
