"""Delivery receipts: when a client displayed messages, so the end-to-end delay can be
measured in buckets (0-1 s, 1-2 s, 2-5 s, 5-10 s, > 10 s; seed 001 §12).

A client reports each message from someone else once, with how many
milliseconds ago it displayed it (`shown_ago_ms`): relative times need no
agreement between the client's clock and ours. The delay is the display time in
our clock minus the message's `created_at`. Only messages of the reporter's
conversations count, never their own, none older than
MONITORING_RECEIPT_MAX_AGE_SECONDS at display (a device catching up after a day
offline measures its absence, not our delay), and none shown before they were
sent. Each device counts a message once: a client that resends a receipt (its
link dropped before the answer) does not count it again. Each of a user's
devices does count, since each displayed it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.models import Membership, Message
from wechat_core.cacheclient import cache_redis
from wechat_core.errors import InvalidInput
from wechat_core.metrics import client_version_label, histogram

DELIVERY_DELAY = histogram(
    "messaging_delivery_delay_seconds",
    "Send to display of messages, from the receipts clients report.",
    ["platform", "client_version"],
    buckets=(1.0, 2.0, 5.0, 10.0),
    process_labels=True,
)
logger = logging.getLogger(__name__)
# How far the clocks of two of our servers may disagree (the one that stored the
# message and the one that took the receipt).
CLOCK_SKEW_SECONDS = 1.0


def _first_reports(device_id: int, message_ids: list[int]) -> set[int]:
    """The messages this device had not reported yet; marks them reported.

    A mark lasts until no receipt of the message could count any more: shown at
    most MAX_AGE after it was sent, reported at most MAX_AGE (the cap) after that.
    """
    if not message_ids:
        return set()
    timeout = 2 * settings.MONITORING_RECEIPT_MAX_AGE_SECONDS + 2
    keys = [f"receipt:{device_id}:{message_id}" for message_id in message_ids]
    try:
        client = cache_redis()
        if client is not None:
            # One round trip for the whole receipt (SET NX per message).
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.set(cache.make_key(key), 1, nx=True, ex=timeout)
            firsts = pipe.execute()
        else:
            firsts = [cache.add(key, 1, timeout=timeout) for key in keys]
    except Exception:
        # Counting twice is better than not measuring at all (flexible availability).
        logger.warning("receipt marks unreachable; counting without them")
        return set(message_ids)
    return {message_id for message_id, first in zip(message_ids, firsts, strict=True) if first}


def receipts_record(*, ticket: VerifiedTicket, user_id: int, shown: list[tuple[int, int]]) -> int:
    """`shown`: (message id, milliseconds since it was displayed). Returns how many counted."""
    ticket_require(ticket, user_id=user_id)
    if len(shown) > settings.MONITORING_RECEIPT_MAX_MESSAGES:
        raise InvalidInput(
            f"At most {settings.MONITORING_RECEIPT_MAX_MESSAGES} messages per receipt.",
            details={"limit": settings.MONITORING_RECEIPT_MAX_MESSAGES},
        )
    # Beyond the age limit a receipt counts for nothing anyway; capping keeps a
    # client's huge number from overflowing the date arithmetic.
    cap = (settings.MONITORING_RECEIPT_MAX_AGE_SECONDS + 1) * 1000
    ago = {message_id: min(max(0, ms), cap) for message_id, ms in shown}
    conversations = Membership.objects.filter(user_id=user_id).values("conversation_id")
    created = (
        Message.objects.filter(pk__in=list(ago), conversation_id__in=conversations)
        .exclude(sender_id=user_id)
        .values_list("pk", "created_at")
    )
    now = timezone.now()
    limit = settings.MONITORING_RECEIPT_MAX_AGE_SECONDS
    platform, version = ticket.platform or "none", client_version_label(ticket.client_version)
    delays: dict[int, float] = {}
    for message_id, created_at in created:
        delay = (now - timedelta(milliseconds=ago[message_id]) - created_at).total_seconds()
        # Shown before it was sent is impossible: a client's bad arithmetic, not a
        # delay (a little below zero is the servers' clocks disagreeing).
        if -CLOCK_SKEW_SECONDS <= delay <= limit:
            delays[message_id] = max(0.0, delay)
    firsts = _first_reports(ticket.device_id, sorted(delays))
    for message_id in firsts:
        DELIVERY_DELAY.observe(platform, version, value=delays[message_id])
    return len(firsts)
