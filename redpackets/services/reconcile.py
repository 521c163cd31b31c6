"""Reconciliation of red packets (seed 003 对账): check, redo what failed, alert on
what still fails, keep a report.

For every packet, in chunks of REDPACKETS_RECONCILE_CHUNK by id:

- redo first: a grab still arriving after REDPACKETS_CREDIT_SWEEP_AFTER_SECONDS
  is credited now (`credit_missing`); a grab whose ledger credit exists but is
  not marked is marked (`credit_unmarked`); an open packet past its expiry is
  refunded (`refund_overdue`);
- then check, on what is now in the database:
  `split_mismatch`: total ≠ Σ grabs + remaining_amount + refunded_amount;
  `escrow_mismatch`: the escrow's balance ≠ total - Σ credited grabs - refunded_amount;
  `send_missing`: no PACKET_SEND transaction `redpacket:<id>:send`;
  `refund_missing`: an expired packet with refunded fen but no PACKET_REFUND
  transaction `redpacket:<id>:refund`;
  `credit_mismatch`: a credited grab whose ledger transaction is not the one
  keyed `redpacket:<packet>:grab:<grab>` (each grab has exactly one credit:
  the key is unique in the ledger, so never two).

Then the whole ledger (wallet.reconcile.wallet_reconcile: every balance equals
its postings). What is still wrong after the redo is `unresolved`: the gauge
`redpackets_reconcile_unresolved` and the alert rule "Red packet
reconciliation" (monitoring's channels tell operators) say so until a pass
finds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from monitoring.models import Aggregation, Severity
from monitoring.services.alerts import ExternalRule, Verdict, alert_verdict_record
from redpackets.models import CreditState, Grab, Packet, PacketState, ReconciliationReport
from redpackets.services.crediting import grab_credit, grab_idempotency_key
from redpackets.services.refunds import packet_refund
from wallet.models import LedgerTransaction
from wallet.reconcile import wallet_reconcile
from wechat_core.metrics import gauge

UNRESOLVED = gauge(
    "redpackets_reconcile_unresolved",
    "Problems the last red-packet reconciliation could not repair (0: all is well).",
    mode="mostrecent",
)
RULE = ExternalRule(
    source="redpackets",
    name="Red packet reconciliation",
    description=(
        "Judged by the daily red-packet reconciliation (manage.py reconcile_redpackets): "
        "fires while a pass leaves problems it could not repair (escrow, split, ledger); "
        "see the report in the admin (Red packets > Reconciliation reports)."
    ),
    metric=UNRESOLVED.name,
    aggregation=Aggregation.MAX,
    threshold=0,
    window_seconds=86400,
    severity=Severity.CRITICAL,
)


class _Pass:
    def __init__(self) -> None:
        self.problems: list[dict[str, Any]] = []
        self.found = self.repaired = self.unresolved = 0
        self.packets = self.grabs = 0

    def note(self, problem: str, packet: int, detail: str, *, repaired: bool, **more: Any) -> None:
        self.found += 1
        if repaired:
            self.repaired += 1
        else:
            self.unresolved += 1
        if len(self.problems) < settings.REDPACKETS_RECONCILE_REPORT_MAX:
            self.problems.append(
                {
                    "problem": problem,
                    "packet": packet,
                    "detail": detail,
                    "repaired": repaired,
                    **more,
                }
            )


def _chunks(size: int) -> Iterator[list[Packet]]:
    after = 0
    while True:
        chunk = list(
            Packet.objects.filter(pk__gt=after).select_related("escrow").order_by("pk")[:size]
        )
        if not chunk:
            return
        yield chunk
        after = chunk[-1].pk


def _redo(chunk: list[Packet], run: _Pass, now: Any) -> None:
    ids = [packet.pk for packet in chunk]
    stale = now - timedelta(seconds=settings.REDPACKETS_CREDIT_SWEEP_AFTER_SECONDS)
    for grab in Grab.objects.filter(
        packet_id__in=ids, credit_state=CreditState.ARRIVING, created_at__lte=stale
    ).only("pk", "packet_id"):
        key = grab_idempotency_key(grab.packet_id, grab.pk)
        problem = (
            "credit_unmarked"
            if LedgerTransaction.objects.filter(idempotency_key=key).exists()
            else "credit_missing"
        )
        done = grab_credit(grab_id=grab.pk, via="reconcile")
        run.note(
            problem, grab.packet_id, f"grab {grab.pk} was not credited", repaired=done, grab=grab.pk
        )
    overdue = now - timedelta(seconds=settings.REDPACKETS_REFUND_SWEEP_SECONDS)
    for packet in chunk:
        if packet.state == PacketState.OPEN and packet.expires_at <= overdue:
            done = packet_refund(packet_id=packet.pk, now=now)
            run.note("refund_overdue", packet.pk, "expired but not refunded", repaired=done)


def _check(chunk: list[Packet], run: _Pass) -> None:
    ids = [packet.pk for packet in chunk]
    sums = {
        row["packet_id"]: row
        for row in Grab.objects.filter(packet_id__in=ids)
        .values("packet_id")
        .annotate(
            grabbed=Sum("amount"),
            credited=Sum("amount", filter=Q(credit_state=CreditState.CREDITED)),
        )
    }
    grabs = list(
        Grab.objects.filter(packet_id__in=ids, credit_state=CreditState.CREDITED).values_list(
            "pk", "packet_id", "credit_transaction_id"
        )
    )
    run.grabs += Grab.objects.filter(packet_id__in=ids).count()
    keys = [f"redpacket:{pk}:send" for pk in ids] + [f"redpacket:{pk}:refund" for pk in ids]
    keys += [grab_idempotency_key(packet_id, pk) for pk, packet_id, _ in grabs]
    ledger = dict(
        LedgerTransaction.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", "pk"
        )
    )
    for grab_id, packet_id, transaction_id in grabs:
        expected = ledger.get(grab_idempotency_key(packet_id, grab_id))
        if expected is None or expected != transaction_id:
            run.note(
                "credit_mismatch",
                packet_id,
                f"grab {grab_id}: ledger {expected}, marked {transaction_id}",
                repaired=False,
                grab=grab_id,
            )
    fresh = {p.pk: p for p in Packet.objects.filter(pk__in=ids).select_related("escrow")}
    for packet in fresh.values():
        run.packets += 1
        row = sums.get(packet.pk, {})
        grabbed, credited = int(row.get("grabbed") or 0), int(row.get("credited") or 0)
        if packet.total_amount != grabbed + packet.remaining_amount + packet.refunded_amount:
            run.note(
                "split_mismatch",
                packet.pk,
                f"total {packet.total_amount} ≠ grabbed "
                f"{grabbed} + remaining {packet.remaining_amount} + refunded "
                f"{packet.refunded_amount}",
                repaired=False,
            )
        owed = packet.total_amount - credited - packet.refunded_amount
        if packet.escrow.balance != owed:
            run.note(
                "escrow_mismatch",
                packet.pk,
                f"escrow holds {packet.escrow.balance}, should hold {owed}",
                repaired=False,
            )
        if f"redpacket:{packet.pk}:send" not in ledger:
            run.note("send_missing", packet.pk, "no PACKET_SEND transaction", repaired=False)
        if packet.refunded_amount and f"redpacket:{packet.pk}:refund" not in ledger:
            run.note("refund_missing", packet.pk, "no PACKET_REFUND transaction", repaired=False)


def redpackets_reconcile() -> ReconciliationReport:
    """One full pass (see the module); the report is saved and returned."""
    started = timezone.now()
    run = _Pass()
    for chunk in _chunks(settings.REDPACKETS_RECONCILE_CHUNK):
        _redo(chunk, run, started)
        _check(chunk, run)
    ledger = wallet_reconcile()
    ledger_ok = ledger.account_mismatch_count == 0 and ledger.unbalanced_count == 0
    ledger_ok = ledger_ok and ledger.total_balance == 0
    unresolved = run.unresolved + (0 if ledger_ok else 1)
    report = ReconciliationReport.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        packets_checked=run.packets,
        grabs_checked=run.grabs,
        problems_found=run.found + (0 if ledger_ok else 1),
        repaired=run.repaired,
        unresolved=unresolved,
        ledger_ok=ledger_ok,
        problems=run.problems,
        ledger={
            "accounts_checked": ledger.accounts_checked,
            "transactions_checked": ledger.transactions_checked,
            "postings_checked": ledger.postings_checked,
            "total_balance": ledger.total_balance,
            "account_mismatches": ledger.account_mismatch_count,
            "unbalanced_transactions": ledger.unbalanced_count,
        },
    )
    UNRESOLVED.set(value=unresolved)
    explanation = (
        f"{unresolved} problem(s) left after repairing {run.repaired} (report {report.pk})"
        if unresolved
        else f"all {run.packets} packets and the ledger reconcile (report {report.pk})"
    )
    alert_verdict_record(rule=RULE, verdict=Verdict(unresolved > 0, float(unresolved), explanation))
    return report
