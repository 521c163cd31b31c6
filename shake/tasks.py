"""Celery tasks of shake activities: thin, each calling one service. Crediting a
prize runs on `payout_fast` (the user's money, never behind other queues); delivering
a coupon on `payout_slow` (at its business's pace, never in the money's way); telling
clients of new sponsor assets on `default` (nobody's money waits on it)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from shake.services import (
    assets,
    delivery,
    opening,
    reconcile,
    reserving,
    settlement,
    sharing,
)


@shared_task(name="shake.tasks.credit_prize", acks_late=True, ignore_result=True)
def credit_prize(prize_id: int) -> bool:
    return opening.prize_credit(prize_id=prize_id)


@shared_task(name="shake.tasks.recycle", ignore_result=True)
def recycle() -> int:
    return reserving.prizes_recycle_now()


@shared_task(name="shake.tasks.recycle_shares", ignore_result=True)
def recycle_shares() -> int:
    """Extra shares not passed on in time, and the refunded rest of those passed on that
    nobody grabbed, back to a later round's pool."""
    return sharing.shares_recycle_due().shares


@shared_task(name="shake.tasks.settle", ignore_result=True)
def settle() -> int:
    """Close every activity whose budget nothing can move any more: its rest back to
    the account that funded it."""
    return settlement.activities_settle_due()


@shared_task(name="shake.tasks.reconcile", ignore_result=True)
def reconcile_daily() -> int:
    """Redo lost credits, check every activity's budget, alert on what still fails."""
    return reconcile.shake_reconcile().unresolved


@shared_task(
    name="shake.tasks.deliver_coupon",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,  # bounded by the service: it asks back only while it should
)
def deliver_coupon(self: Any, delivery_id: int) -> str:
    attempt = delivery.coupon_deliver(delivery_id=delivery_id)
    if attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in)
    return attempt.state


# acks_late: a worker killed mid-push leaves the task to be redelivered; the push's
# durable cursor makes the redelivery (and the beat's resume) continue, never repeat.
@shared_task(name="shake.tasks.push_assets", acks_late=True, ignore_result=True)
def push_assets(activity_id: int, version: int) -> int:
    """A `shake_assets` sync entry to every signed-in user for the manifest's new version."""
    return assets.assets_push_run(activity_id=activity_id, version=version)


@shared_task(name="shake.tasks.resume_asset_pushes", ignore_result=True)
def resume_asset_pushes() -> int:
    """Pushes whose worker died (or whose task was lost) run again from their cursor."""
    return len(assets.assets_pushes_resume())
