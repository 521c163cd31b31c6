""" "Delete for me": a member hides a message from their own view only.

The message stays for everyone else (to take it back from everyone, the sender
recalls it). The user's devices learn of it from a `message_update` entry with
`hidden: true` in the user's log; history no longer returns it to them.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.exceptions import MessageNotFound
from messaging.models import HiddenMessage, Membership, Message
from wechat_core.sync.log import entry_append
from wechat_core.sync.models import EntryKind


def message_hide(*, ticket: VerifiedTicket, user_id: int, message_id: int) -> Message:
    """Hide a message the user can see (a member, from their joining on), for them
    only. Hiding it again changes nothing and logs nothing."""
    ticket_require(ticket, user_id=user_id)
    message = Message.objects.filter(pk=message_id).first()
    membership = (
        Membership.objects.filter(
            conversation_id=message.conversation_id, user_id=user_id, left_seq__isnull=True
        ).first()
        if message is not None
        else None
    )
    # As for a recall: a message the user cannot see does not exist for them.
    if message is None or membership is None or message.seq < membership.joined_seq:
        raise MessageNotFound()
    try:
        with transaction.atomic():
            HiddenMessage.objects.create(user_id=user_id, message=message)
            entry_append(
                user_id=user_id,
                kind=EntryKind.MESSAGE_UPDATE,
                conversation_id=message.conversation_id,
                payload={"message": message.pk, "hidden": True},
            )
    except IntegrityError:
        pass  # hidden already (perhaps from another device at the same moment)
    return message
