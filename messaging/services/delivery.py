"""Delivery: write a conversation's pending events into its members' sync logs.

Sending assigns a conversation seq and stores the event once. Delivery then
takes the conversation's `DeliveryCursor` lock, reads every event after the
cursor in seq order, appends one entry per event to each member's log, and
moves the cursor. Because only the lock holder delivers, and always in seq
order, every member's log lists the conversation's events in one order.

Small conversations deliver inside the send transaction, so the sender's ack
means "in everyone's log". Above MESSAGING_INLINE_DELIVERY_MAX_MEMBERS the send
only enqueues `messaging.tasks.deliver_conversation` (queue `delivery`): the ack
never waits for a big group. Delivery is idempotent, so a duplicated task does
nothing and a lost one is caught up by the next delivery or by the periodic
sweep of conversations whose cursor lags.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging.models import DeliveryCursor, EntryKind, Membership, Message, SyncEntry
from messaging.services.synclog import (
    entries_count_on_commit,
    notify_on_commit,
    sequences_allocate,
)
from monitoring.metrics import counter, histogram

logger = logging.getLogger(__name__)
MESSAGES_DELIVERED = counter(
    "messaging_messages_delivered_total",
    "Conversation events written into a recipient's sync log, by delivery path.",
    ["path"],
    process_labels=True,
)
FANOUT = histogram(
    "messaging_fanout_recipients",
    "Recipients each conversation event is delivered to, by delivery path.",
    ["path"],
    buckets=(1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000),
    process_labels=True,
)


def deliveries_count_on_commit(path: str, recipients: list[int]) -> None:
    """Count delivered events (one per recipient list) once the transaction commits."""
    if not recipients:
        return

    def count() -> None:
        MESSAGES_DELIVERED.inc(path, amount=sum(recipients))
        for size in recipients:
            FANOUT.observe(path, value=size)

    transaction.on_commit(count)
    entries_count_on_commit("message", sum(recipients))


# A mark older than this is assumed lost with its task; the sweep covers the gap.
PENDING_MARK_SECONDS = 30


def delivery_is_inline(member_count: int) -> bool:
    return member_count <= settings.MESSAGING_INLINE_DELIVERY_MAX_MEMBERS


def conversation_deliver(*, conversation_id: int) -> int:
    """Deliver every pending event of the conversation; returns how many.

    Call inside a transaction (the send's, or the task's own).
    """
    cursor = (
        DeliveryCursor.objects.select_for_update(no_key=True)
        .filter(conversation_id=conversation_id)
        .first()
    )
    if cursor is None:
        return 0
    events = list(
        Message.objects.filter(conversation_id=conversation_id, seq__gt=cursor.delivered_seq)
        .order_by("seq")
        .values_list("id", "seq")[: settings.MESSAGING_DELIVERY_BATCH]
    )
    if not events:
        return 0
    first_seq, last_seq = events[0][1], events[-1][1]
    members = list(
        Membership.objects.filter(conversation_id=conversation_id, joined_seq__lte=last_seq)
        .filter(Q(left_seq__isnull=True) | Q(left_seq__gte=first_seq))
        .values_list("user_id", "joined_seq", "left_seq")
    )
    recipients = [
        (message_id, [user for user, joined, left in members
                      if joined <= seq and (left is None or seq <= left)])
        for message_id, seq in events
    ]  # fmt: skip
    counts = Counter(user for _, users in recipients for user in users)
    last = sequences_allocate(counts)
    next_seq = {user: last[user] - counts[user] + 1 for user in counts}
    entries = []
    for message_id, users in recipients:
        for user in users:
            entries.append(
                SyncEntry(
                    user_id=user,
                    seq=next_seq[user],
                    kind=EntryKind.MESSAGE,
                    conversation_id=conversation_id,
                    message_id=message_id,
                )
            )
            next_seq[user] += 1
    SyncEntry.objects.bulk_create(entries, batch_size=1000)
    path = "inline" if delivery_is_inline(len(counts)) else "celery"
    deliveries_count_on_commit(path, [len(users) for _, users in recipients if users])
    DeliveryCursor.objects.filter(pk=conversation_id).update(
        delivered_seq=last_seq, updated_at=timezone.now()
    )
    notify_on_commit(last)
    return len(events)


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
    transaction.on_commit(lambda: _enqueue(conversation_id))


def _enqueue(conversation_id: int) -> None:
    from messaging.tasks import deliver_conversation

    try:
        first = cache.add(_pending_key(conversation_id), 1, timeout=PENDING_MARK_SECONDS)
    except Exception:
        first = True  # without the cache, enqueue every time: duplicates are harmless
    if first:
        deliver_conversation.delay(conversation_id)


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
