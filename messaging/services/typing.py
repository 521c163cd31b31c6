""" "Typing…": a member tells the others of a chat that they are writing.

Nothing is stored and nothing enters a sync log: the notice goes straight to the
live connections of the chat's other members (wechat_core.realtime), best
effort, and a client shows it for a few seconds unless it hears it again. One
notice per user and chat per `MESSAGING_TYPING_INTERVAL_SECONDS` is relayed;
repeats inside that window are answered (`relayed: false`) but go nowhere, so a
client that announces every keystroke costs its chat nothing more.
"""

from __future__ import annotations

from django.conf import settings

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.exceptions import ConversationNotFound
from messaging.models import Membership
from messaging.wire import TypingFrame
from wechat_core.ratelimit import window_hit
from wechat_core.realtime import publish, user_group

TYPING_SCOPE = "typing"


def typing_announce(*, ticket: VerifiedTicket, user_id: int, conversation_id: int) -> bool:
    """Relay "user is typing" to the chat's other active members; False when a
    notice of this user in this chat was relayed within the interval already."""
    ticket_require(ticket, user_id=user_id)
    members = list(
        Membership.objects.filter(conversation_id=conversation_id, left_seq__isnull=True)
        .exclude(left_seq=0)  # an official account's identity receives nothing
        .values_list("user_id", flat=True)
    )
    if user_id not in members:
        raise ConversationNotFound()
    interval = settings.MESSAGING_TYPING_INTERVAL_SECONDS
    hits = window_hit(
        scope=TYPING_SCOPE, identity=f"{user_id}:{conversation_id}", window_seconds=interval
    )
    if hits.count > 1:
        return False
    frame: TypingFrame = {"type": "typing", "conversation": conversation_id, "user": user_id}
    for member in members:
        if member != user_id:
            publish(user_group(member), dict(frame))
    return True
