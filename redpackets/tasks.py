"""Celery tasks of red packets: thin, each calling one service.

`credit_grab` runs on `payout_fast` (the user's money, never behind the chat's
or the provider's queues); the beat tasks sweep arriving credits, refund
expired packets and reconcile once a day."""

from __future__ import annotations

from celery import shared_task

from redpackets.services import crediting, reconcile, refunds


@shared_task(name="redpackets.tasks.credit_grab", acks_late=True, ignore_result=True)
def credit_grab(grab_id: int) -> bool:
    """Credit one grab (exactly once, whatever the retries: services.crediting)."""
    return crediting.grab_credit(grab_id=grab_id)


@shared_task(name="redpackets.tasks.sweep_arriving_credits", ignore_result=True)
def sweep_arriving_credits() -> int:
    return crediting.grabs_credit_sweep()


@shared_task(name="redpackets.tasks.refund_expired", ignore_result=True)
def refund_expired() -> int:
    return refunds.packets_refund_expired()


@shared_task(name="redpackets.tasks.reconcile", ignore_result=True)
def reconcile_daily() -> int:
    """The daily reconciliation; returns how many problems it left unresolved."""
    return reconcile.redpackets_reconcile().unresolved
