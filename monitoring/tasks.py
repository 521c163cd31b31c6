"""Celery tasks of monitoring (queue `monitoring`): thin wrappers over services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from monitoring.services.alerts import alerts_evaluate
from monitoring.services.history import history_purge
from monitoring.services.notify import DeliveryFailed, notification_deliver
from monitoring.services.queues import queues_sample, replication_sample


@shared_task(name="monitoring.tasks.evaluate_alerts")
def evaluate_alerts() -> int:
    return alerts_evaluate()


@shared_task(name="monitoring.tasks.sample_queues")
def sample_queues() -> int:
    now = timezone.now()
    replication_sample(at=now)  # with several data centres (issue 17)
    return queues_sample(at=now)


@shared_task(name="monitoring.tasks.purge_history")
def purge_history() -> int:
    return history_purge()


@shared_task(
    name="monitoring.tasks.deliver_notification",
    bind=True,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=settings.MONITORING_NOTIFY_MAX_ATTEMPTS,
    acks_late=True,
)
def deliver_notification(self: object, notification_id: int) -> bool:
    return notification_deliver(notification_id=notification_id)
