"""Reconciliation of shake activities (seed 003 对账): redo what failed, check the
money, alert operators on what still fails (docs/shake.md "Reconciliation").

Redo first: a prize opened more than SHAKE_CREDIT_SWEEP_AFTER_SECONDS ago and not
credited (its `credit_prize` task lost) is credited now, exactly once (the ledger's
idempotency key), and every coupon delivery that failed, was deferred, or was
lost on the way gets one more attempt at its business's pace
(`services.delivery.deliveries_redo`). Then check each approved activity:

- `plan_mismatch`: the budget's funding ≠ Σ amount + extra amount of its prizes
  (recycled rows excluded: their amounts live on in their new rows; so are the extra
  amounts of shares recycled, which live on as cash prizes of a later round; and
  minus the shares returned: the ungrabbed rest of shares passed on, which lives on
  as cash prizes too);
- `shares_twice`: a prize whose shares were recycled and also passed on (the ledger
  holds `shake:prize:<id>:shares`);
- `credit_missing`: a prize marked credited without its ledger transaction
  `shake:prize:<id>`;
- `credit_failed`: a prize still opened and uncredited after the redo;
- `budget_mismatch`: the budget's balance ≠ funding - Σ credited amounts - Σ extra
  amounts passed on as red packets + Σ what those red packets refunded into the
  budget (their ungrabbed rest) - what the activity's close returned to the funding
  account (services.settlement);
- `settle_missing`: a close that returned money without its ledger transaction
  `shake:<id>:settle`;
- `delivery_failed`: a coupon whose delivery still failed after the redo (its
  business down or refusing); `delivery_missing`: an opened coupon without a
  delivery record. A deferred coupon (its winner has no account at the business)
  is not a problem: it waits for its winner, and each pass tries it again.

Coupons are not money: they are outside the budget's sums.

What is still wrong is `unresolved`: the gauge `shake_reconcile_unresolved` and the
alert rule "Shake reconciliation" (monitoring's channels tell operators) say so
until a pass finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from monitoring.models import Aggregation, Severity
from monitoring.services.alerts import ExternalRule, Verdict, alert_verdict_record
from shake.models import Activity, DeliveryState, Prize, PrizeKind, PrizeState
from shake.services.delivery import deliveries_redo
from shake.services.opening import prize_credit
from shake.services.settlement import budget_settled
from wallet.models import LedgerTransaction
from wallet.selectors import ledger_balance, ledger_keys_present
from wallet.services.ledger import budget_account_open
from wechat_core.metrics import gauge

UNRESOLVED = gauge(
    "shake_reconcile_unresolved",
    "Problems the last shake reconciliation could not repair (0: all is well).",
    mode="mostrecent",
)
RULE = ExternalRule(
    source="shake",
    name="Shake reconciliation",
    description=(
        "Judged by the shake reconciliation (shake.tasks.reconcile, daily): fires while a "
        "pass leaves problems it could not repair (an activity's budget against its "
        "prizes and payouts, prizes opened but never credited, coupons whose delivery to "
        "their business still fails)."
    ),
    metric=UNRESOLVED.name,
    aggregation=Aggregation.MAX,
    threshold=0,
    window_seconds=86400,
    severity=Severity.CRITICAL,
)


@dataclass
class ShakeReconciliation:
    activities: int = 0
    repaired: int = 0
    deliveries_redone: int = 0
    unresolved: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def note(self, problem: str, activity: int, detail: str, **more: Any) -> None:
        self.unresolved += 1
        self.problems.append({"problem": problem, "activity": activity, "detail": detail, **more})


def _redo(run: ShakeReconciliation, now: Any) -> None:
    stale = now - timedelta(seconds=settings.SHAKE_CREDIT_SWEEP_AFTER_SECONDS)
    for prize_id in (
        Prize.objects.filter(state=PrizeState.OPENED, credited_at__isnull=True, opened_at__lt=stale)
        .exclude(kind=PrizeKind.COUPON)
        .values_list("id", flat=True)
    ):
        if prize_credit(prize_id=prize_id):
            run.repaired += 1
    attempted, delivered = deliveries_redo()
    run.deliveries_redone += attempted
    run.repaired += delivered


def _check(activity: Activity, run: ShakeReconciliation) -> None:
    coupons = Prize.objects.filter(round__activity=activity, kind=PrizeKind.COUPON)
    prizes = Prize.objects.filter(round__activity=activity).exclude(kind=PrizeKind.COUPON)
    live = prizes.exclude(state=PrizeState.RECYCLED)
    amounts = live.aggregate(total=Sum("amount"))["total"] or 0
    # Recycled shares live on as the cash prizes made of them (counted in amounts).
    extras = (
        live.filter(shares_recycled_at__isnull=True).aggregate(total=Sum("extra_amount"))["total"]
        or 0
    )
    # The ungrabbed rest of shares passed on is counted in its extra amount and again
    # in the cash prizes made of it.
    returned = live.aggregate(total=Sum("shares_returned"))["total"] or 0
    planned = amounts + extras - returned
    if planned != activity.budget_fen:
        run.note("plan_mismatch", activity.pk, f"prizes {planned} ≠ funded {activity.budget_fen}")
    credited = list(prizes.filter(credited_at__isnull=False).values_list("id", "amount"))
    keys = set(
        LedgerTransaction.objects.filter(
            idempotency_key__in=[f"shake:prize:{prize_id}" for prize_id, _ in credited]
        ).values_list("idempotency_key", flat=True)
    )
    for prize_id, _ in credited:
        if f"shake:prize:{prize_id}" not in keys:
            run.note("credit_missing", activity.pk, "no BUDGET_PAYOUT transaction", prize=prize_id)
    for prize_id in (
        prizes.filter(state=PrizeState.OPENED, credited_at__isnull=True)
        .filter(
            opened_at__lt=timezone.now()
            - timedelta(seconds=settings.SHAKE_CREDIT_SWEEP_AFTER_SECONDS)
        )
        .values_list("id", flat=True)
    ):
        run.note("credit_failed", activity.pk, "opened, still not credited", prize=prize_id)
    recycled_shares = list(
        prizes.filter(shares_recycled_at__isnull=False).values_list("id", flat=True)
    )
    for key in ledger_keys_present(keys=[f"shake:prize:{pk}:shares" for pk in recycled_shares]):
        run.note("shares_twice", activity.pk, "shares recycled and passed on", key=key)
    paid = sum(amount for _, amount in credited)
    passed_on = (
        prizes.filter(~Q(shares_packet=None)).aggregate(total=Sum("extra_amount"))["total"] or 0
    )
    _check_coupons(coupons, activity, run)
    budget = budget_account_open(reference=activity.budget_reference)
    came_back = (
        prizes.filter(shares_packet__refund_account=budget).aggregate(
            total=Sum("shares_packet__refunded_amount")
        )["total"]
        or 0
    )
    settled = budget_settled(activity)
    if settled and not ledger_keys_present(keys=[f"shake:{activity.pk}:settle"]):
        run.note("settle_missing", activity.pk, f"closed, {settled} fen returned, no transaction")
    balance = ledger_balance(account_id=budget.pk)
    if balance != activity.budget_fen - paid - passed_on + came_back - settled:
        run.note(
            "budget_mismatch",
            activity.pk,
            f"balance {balance} ≠ funded {activity.budget_fen} - paid {paid} - shares "
            f"{passed_on} + shares refunded {came_back} - settled {settled}",
        )


def _check_coupons(coupons: QuerySet[Prize], activity: Activity, run: ShakeReconciliation) -> None:
    for prize_id, state, detail in coupons.filter(
        state=PrizeState.OPENED, delivery__state=DeliveryState.FAILED
    ).values_list("id", "delivery__state", "delivery__last_detail"):
        run.note("delivery_failed", activity.pk, f"{state}: {detail}"[:200], prize=prize_id)
    for prize_id in coupons.filter(state=PrizeState.OPENED, delivery__isnull=True).values_list(
        "id", flat=True
    ):
        run.note("delivery_missing", activity.pk, "opened, no delivery record", prize=prize_id)


def shake_reconcile() -> ShakeReconciliation:
    """One full pass (see the module)."""
    run = ShakeReconciliation()
    _redo(run, timezone.now())
    for activity in Activity.objects.filter(approved_at__isnull=False).order_by("id"):
        run.activities += 1
        _check(activity, run)
    UNRESOLVED.set(value=run.unresolved)
    explanation = (
        f"{run.unresolved} problem(s) left after repairing {run.repaired}: {run.problems[:5]}"
        if run.unresolved
        else f"all {run.activities} activities reconcile ({run.repaired} credit(s) and "
        f"deliveries redone)"
    )
    alert_verdict_record(
        rule=RULE, verdict=Verdict(run.unresolved > 0, float(run.unresolved), explanation[:500])
    )
    return run
