"""Celery tasks of messaging (queue `delivery`): thin wrappers over services.delivery."""

from celery import shared_task
from django.conf import settings

from messaging.services.delivery import (
    conversation_deliver_all,
    delivery_started,
    lagging_conversations,
)


@shared_task(name="messaging.tasks.deliver_conversation", acks_late=True)
def deliver_conversation(conversation_id: int) -> int:
    delivery_started(conversation_id=conversation_id)
    return conversation_deliver_all(conversation_id=conversation_id)


@shared_task(name="messaging.tasks.sweep_lagging_deliveries")
def sweep_lagging_deliveries() -> int:
    """Deliver conversations whose task was lost (a worker died mid-way)."""
    lagging = lagging_conversations(older_than_seconds=settings.MESSAGING_DELIVERY_SWEEP_SECONDS)
    for conversation_id in lagging:
        conversation_deliver_all(conversation_id=conversation_id)
    return len(lagging)
