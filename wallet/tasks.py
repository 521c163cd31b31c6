"""Celery tasks of the wallet (queue payout_slow: the provider's pace, never the
chat's): load by id, call one service. Nothing reads their results."""

from __future__ import annotations

from celery import shared_task

from wallet.services import topups, withdrawals


@shared_task(name="wallet.tasks.submit_withdrawal", acks_late=True, ignore_result=True)
def submit_withdrawal(withdrawal_id: int) -> str:
    """Send a withdrawal to the provider. An unknown outcome is not retried here:
    the beat task below asks the provider about it."""
    return withdrawals.withdrawal_submit(withdrawal_id=withdrawal_id).status


@shared_task(name="wallet.tasks.check_pending_orders", ignore_result=True)
def check_pending_orders() -> int:
    """Top-ups and withdrawals unheard of for a while: lost notifications, lost
    tasks, unknown outcomes, expired orders."""
    return topups.topups_check_pending() + withdrawals.withdrawals_check_pending()
