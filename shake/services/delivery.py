"""Delivering opened coupons to their businesses (seed 003's slow payout, 礼券发货).

`coupon_deliver` is one attempt, run by `shake.tasks.deliver_coupon` on `payout_slow`,
by the winner's retry and by reconciliation:

1. **Claim** the delivery in one conditional UPDATE (pending or failed, or sending
   under a claim older than SHAKE_PAYOUT_LEASE_SECONDS whose worker died): two
   attempts never run side by side, and a delivered coupon is never sent again.
2. **Pace**: take a request of the business's shared pace (`shake.pacing`), waiting
   up to SHAKE_PAYOUT_TOKEN_WAIT_SECONDS; else the claim goes back (pending) and the
   task comes back later.
3. **Send** the signed request with the delivery's idempotency key
   (`shake.business`, through the breaker), outside any transaction.
4. **Settle** the answer: delivered (final), deferred (no account: it waits for the
   winner's retry or reconciliation), pending again (too fast: the pace slows), or
   failed (retried with backoff up to SHAKE_PAYOUT_MAX_ATTEMPTS attempts, then left to
   reconciliation). A timeout slows the pace too.

Whatever the retries and redeliveries, the business sees one key per prize and
grants it once; our record says delivered once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from shake import business, pacing
from shake.exceptions import PrizeUnknown
from shake.models import CouponDelivery, DeliveryState, Prize
from wechat_core.metrics import counter
from wechat_core.transactions import enqueue_on_commit

ATTEMPTS = counter(
    "shake_coupon_delivery_attempts_total",
    "Coupon delivery attempts by outcome (delivered, no_account, too_fast, timeout, failed, "
    "refused, unpaced).",
    ["outcome"],
    process_labels=True,
)


@dataclass(frozen=True, slots=True)
class Attempt:
    state: str
    # Seconds until the task should try again, None when it should not.
    retry_in: float | None = None


def delivery_open(*, prize: Prize) -> CouponDelivery:
    """The delivery record of a coupon just opened, in the opening's transaction; its
    first attempt is enqueued after commit (a lost task is caught up by reconciliation)."""
    delivery, created = CouponDelivery.objects.get_or_create(
        prize=prize, defaults={"business_id": prize.business_id, "user_id": prize.winner_id}
    )
    if created:
        enqueue_on_commit("shake.tasks.deliver_coupon", delivery.pk, name="shake_coupon_enqueue")
    return delivery


def _claim(delivery_id: int) -> CouponDelivery | None:
    now = timezone.now()
    lease = now - timedelta(seconds=settings.SHAKE_PAYOUT_LEASE_SECONDS)
    with transaction.atomic():
        claimed = (
            CouponDelivery.objects.filter(pk=delivery_id)
            .filter(
                Q(state__in=[DeliveryState.PENDING, DeliveryState.FAILED])
                | Q(state=DeliveryState.SENDING, claimed_at__lt=lease)
            )
            .update(state=DeliveryState.SENDING, claimed_at=now, updated_at=now)
        )
        if not claimed:
            return None
        return CouponDelivery.objects.select_related("business", "prize").get(pk=delivery_id)


def _settle(delivery: CouponDelivery, state: str, outcome: business.Outcome) -> None:
    """Record an attempt's answer, only if the claim is still ours (a delivered one
    is recorded whatever happened meanwhile: it is the truth)."""
    now = timezone.now()
    rows = CouponDelivery.objects.filter(pk=delivery.pk).exclude(state=DeliveryState.DELIVERED)
    if state != DeliveryState.DELIVERED:
        rows = rows.filter(state=DeliveryState.SENDING, claimed_at=delivery.claimed_at)
    rows.update(
        state=state,
        # Attempts count what the business held against us: not our own wait for
        # the pace, nor its "too fast" (that is the pace's business).
        attempts=delivery.attempts + (0 if outcome.result in ("unpaced", "too_fast") else 1),
        last_outcome=outcome.result,
        last_detail=outcome.detail[:300],
        reference=outcome.reference or delivery.reference,
        updated_at=now,
        delivered_at=now if state == DeliveryState.DELIVERED else None,
    )


def _backoff(attempts: int) -> float:
    return float(settings.SHAKE_PAYOUT_RETRY_SECONDS * 2 ** max(attempts - 1, 0))


def coupon_deliver(*, delivery_id: int) -> Attempt:
    """One attempt to deliver (see the module). Returns the state it left and when the
    task should come back."""
    delivery = _claim(delivery_id)
    if delivery is None:
        current = CouponDelivery.objects.filter(pk=delivery_id).values_list("state", flat=True)
        return Attempt(current.first() or "unknown")
    biz = delivery.business
    if not pacing.token_wait(
        business_id=biz.pk,
        rate=biz.rate_per_second,
        within=settings.SHAKE_PAYOUT_TOKEN_WAIT_SECONDS,
    ):
        ATTEMPTS.inc("unpaced")
        _settle(delivery, DeliveryState.PENDING, business.Outcome("unpaced"))
        return Attempt(DeliveryState.PENDING, retry_in=0.0)
    outcome = business.coupon_send(
        business.CouponRequest(
            endpoint=biz.endpoint,
            secret=biz.secret,
            timeout=biz.timeout_seconds,
            idempotency_key=delivery.idempotency_key,
            prize_id=delivery.prize_id,
            coupon=delivery.prize.coupon,
            amount=delivery.prize.amount,
            user_id=delivery.user_id,
        )
    )
    ATTEMPTS.inc(outcome.result)
    if outcome.result in ("too_fast", "timeout"):
        pacing.pace_slow(business_id=biz.pk)
    attempts = delivery.attempts + 1
    if outcome.result == "delivered":
        _settle(delivery, DeliveryState.DELIVERED, outcome)
        return Attempt(DeliveryState.DELIVERED)
    if outcome.result == "no_account":
        _settle(delivery, DeliveryState.DEFERRED, outcome)
        return Attempt(DeliveryState.DEFERRED)
    if outcome.result == "too_fast":
        # Not the delivery's fault: back in line at the slower pace, not counted.
        _settle(delivery, DeliveryState.PENDING, outcome)
        return Attempt(DeliveryState.PENDING, retry_in=0.0)
    _settle(delivery, DeliveryState.FAILED, outcome)
    if attempts >= settings.SHAKE_PAYOUT_MAX_ATTEMPTS:
        return Attempt(DeliveryState.FAILED)
    return Attempt(DeliveryState.FAILED, retry_in=_backoff(attempts))


def coupon_delivery_retry(*, ticket: VerifiedTicket, user_id: int, prize_id: int) -> CouponDelivery:
    """The winner asks for delivery again (seed 003: "支持多次发起发货"). A deferred or
    failed delivery goes back in line; one in line or under way stays as it is (its
    task is coming), unless it has waited past the lease (its task was lost); a
    delivered one answers as it is. However often it is asked, the coupon is
    delivered once."""
    ticket_require(ticket, user_id=user_id)
    now = timezone.now()
    lease = now - timedelta(seconds=settings.SHAKE_PAYOUT_LEASE_SECONDS)
    with transaction.atomic():
        delivery = (
            CouponDelivery.objects.select_for_update(no_key=True)
            .filter(prize_id=prize_id, user_id=user_id)
            .first()
        )
        if delivery is None:
            raise PrizeUnknown("No coupon of yours with that id.")
        stale = delivery.state == DeliveryState.PENDING and delivery.updated_at < lease
        if delivery.state in (DeliveryState.DEFERRED, DeliveryState.FAILED) or stale:
            delivery.state = DeliveryState.PENDING
            delivery.updated_at = now
            delivery.save(update_fields=["state", "updated_at"])
            enqueue_on_commit(
                "shake.tasks.deliver_coupon", delivery.pk, name="shake_coupon_enqueue"
            )
    return delivery


def deliveries_redo() -> tuple[int, int]:
    """Reconciliation's redo (seed 003: 对账 … 对发货异常用户再次发起发货): every failed
    or deferred delivery, and every one pending or under way for longer than
    SHAKE_CREDIT_SWEEP_AFTER_SECONDS (its task lost), gets one attempt now, at the
    business's pace. Returns (attempted, delivered)."""
    stale = timezone.now() - timedelta(seconds=settings.SHAKE_CREDIT_SWEEP_AFTER_SECONDS)
    ids = list(
        CouponDelivery.objects.filter(
            Q(state__in=[DeliveryState.FAILED, DeliveryState.DEFERRED])
            | Q(state__in=[DeliveryState.PENDING, DeliveryState.SENDING], updated_at__lt=stale)
        )
        .order_by("id")
        .values_list("id", flat=True)
    )
    delivered = 0
    for delivery_id in ids:
        CouponDelivery.objects.filter(pk=delivery_id, state=DeliveryState.DEFERRED).update(
            state=DeliveryState.PENDING, updated_at=timezone.now()
        )
        if coupon_deliver(delivery_id=delivery_id).state == DeliveryState.DELIVERED:
            delivered += 1
    return len(ids), delivered
