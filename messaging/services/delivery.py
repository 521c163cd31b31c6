"""Delivery: write a conversation's pending events into its members' sync logs.

Sending assigns a conversation seq and stores the event once. Delivery then
writes every event after the conversation's `DeliveryCursor` into its
recipients' logs, in seq order, under the cursor's lock (messaging.store has
the rules and both implementations).

Small conversations deliver inside the send transaction, so the sender's ack
means "in everyone's log". Above MESSAGING_INLINE_DELIVERY_MAX_MEMBERS the send
only enqueues `messaging.tasks.deliver_conversation` (queue `delivery`): the ack
never waits for a big group. Delivery is idempotent, so a duplicated task does
nothing and a lost one is caught up by the next delivery or by the periodic
sweep of conversations whose cursor lags.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from messaging.models import DeliveryCursor
from messaging.store import store
from messaging.store.base import delivery_is_inline
from wechat_core.transactions import after_commit, task_enqueue

logger = logging.getLogger(__name__)


# A mark older than this is assumed lost with its task; the sweep covers the gap.
PENDING_MARK_SECONDS = 30


def conversation_deliver(*, conversation_id: int) -> int:
    """Deliver a batch of the conversation's pending events; returns how many.

    Call inside a transaction (the send's, or the task's own).
    """
    return store().conversation_deliver(conversation_id=conversation_id)


def conversation_deliver_all(*, conversation_id: int) -> int:
    """Deliver in batches until nothing is pending (the Celery task runs this)."""
    total = 0
    while True:
        with transaction.atomic():
            delivered = conversation_deliver(conversation_id=conversation_id)
        total += delivered
        if delivered < settings.MESSAGING_DELIVERY_BATCH:
            return total


def _pending_key(conversation_id: int) -> str:
    return f"delivery-pending:{conversation_id}"


def delivery_schedule(*, conversation_id: int, member_count: int) -> None:
    """Deliver now if the conversation is small, else enqueue after commit.

    Tasks are coalesced: while one is waiting for a conversation, sends do not
    queue more (it will deliver their events too). The task clears the mark
    before it delivers, so an event committed during a delivery queues a new one.
    """
    if delivery_is_inline(member_count):
        conversation_deliver(conversation_id=conversation_id)
        return
    # Failing (the broker down), the delivery waits for the sweep
    # (MESSAGING_DELIVERY_SWEEP_SECONDS); the send is acknowledged all the same.
    after_commit(lambda: _enqueue(conversation_id), name="delivery_enqueue")


def _enqueue(conversation_id: int) -> None:
    try:
        first = cache.add(_pending_key(conversation_id), 1, timeout=PENDING_MARK_SECONDS)
    except Exception:
        first = True  # without the cache, enqueue every time: duplicates are harmless
    if first:
        task_enqueue("messaging.tasks.deliver_conversation", conversation_id)


def delivery_started(*, conversation_id: int) -> None:
    """The task calls this before delivering (see delivery_schedule)."""
    try:
        cache.delete(_pending_key(conversation_id))
    except Exception:
        logger.warning("could not clear the delivery mark of %s", conversation_id)


def lagging_conversations(*, older_than_seconds: int) -> list[int]:
    """Conversations whose cursor trails their last event for longer than allowed
    (a lost task); the periodic sweep delivers them."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        DeliveryCursor.objects.filter(
            delivered_seq__lt=F("conversation__last_seq"), updated_at__lt=cutoff
        ).values_list("conversation_id", flat=True)[:1000]
    )
