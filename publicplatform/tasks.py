"""Celery tasks of the official accounts platform: load by id, call one service,
say when to run again. Pushes (`deliver_webhook`) go to the `webhook` queue,
whose worker runs them on threads; the rest compute and go to `default`
(wechat_core/settings.py CELERY_TASK_ROUTES).

Nothing reads their results, so none is stored: with a result backend, every
`delay()` otherwise subscribes the caller to a result channel and every task
writes and publishes a result, round trips on the webhook's path for nothing."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from publicplatform.services import developer_api, mass, replies, webhooks


@shared_task(
    bind=True,
    name="publicplatform.tasks.deliver_webhook",
    acks_late=True,
    max_retries=None,
    ignore_result=True,
)
def deliver_webhook(self: Any, delivery_id: int) -> str:
    """One attempt of a push; re-queued for the next attempt, or while the account's
    server has no free slot."""
    step = webhooks.delivery_step(delivery_id=delivery_id)
    if step.retry_in is not None:
        raise self.retry(countdown=step.retry_in)
    return step.status


@shared_task(name="publicplatform.tasks.auto_reply", acks_late=True, ignore_result=True)
def auto_reply(follower_id: int, key: str, text: str) -> int | None:
    ack = replies.auto_reply_answer(follower_id=follower_id, key=key, text=text)
    return ack.message_id if ack else None


@shared_task(name="publicplatform.tasks.greet_follower", acks_late=True, ignore_result=True)
def greet_follower(follower_id: int, followed_at: int) -> int | None:
    ack = replies.greeting_send(follower_id=follower_id, followed_at=followed_at)
    return ack.message_id if ack else None


@shared_task(name="publicplatform.tasks.mass_send_batch", acks_late=True, ignore_result=True)
def mass_send_batch(job_id: int) -> bool:
    """One batch, then the next as a new task: other tasks queued meanwhile get
    their turn between batches."""
    more = mass.mass_batch_send(job_id=job_id)
    if more:
        mass_send_batch.delay(job_id)
    return more


@shared_task(name="publicplatform.tasks.requeue_stale_deliveries", ignore_result=True)
def requeue_stale_deliveries() -> int:
    """Pushes whose task was lost (a broker or worker died) go out again."""
    # Idle for longer than any push takes with all its attempts and their waits.
    per_attempt = (
        settings.PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS
        + settings.PUBLICPLATFORM_WEBHOOK_RETRY_DELAY_SECONDS
    )
    idle = max(60.0, 2 * settings.PUBLICPLATFORM_WEBHOOK_MAX_ATTEMPTS * per_attempt)
    return len(webhooks.deliveries_requeue_stale(idle_seconds=idle))


@shared_task(name="publicplatform.tasks.purge_expired_tokens", ignore_result=True)
def purge_expired_tokens() -> int:
    return developer_api.tokens_purge_expired()
