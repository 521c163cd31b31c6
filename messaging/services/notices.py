"""Messages from system accounts (MESSAGING_SYSTEM_ACCOUNTS, e.g. "monitoring") to
users' own chats: alerts to operators.

A system account needs no friendship: it opens the 1:1 chat itself and writes
through the same numbering and delivery as any message (events.event_append),
so the text reaches every device of the user by SYNC. Idempotent by
client_msg_id like any send: a retried notification is one message.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.exceptions import InvalidContent, NotAllowed
from messaging.models import MessageKind
from messaging.selectors import account_is_system
from messaging.services.conversations import direct_conversation_ensure
from messaging.services.events import conversation_lock, event_append
from messaging.services.sending import CLIENT_MSG_ID, _previous_send
from messaging.types import SendAck


def system_message_send(
    *, ticket: VerifiedTicket, user_id: int, recipient_id: int, text: str, client_msg_id: str
) -> SendAck:
    """The system account `user_id` writes `text` into its chat with `recipient_id`."""
    ticket_require(ticket, user_id=user_id)
    if not account_is_system(user_id=user_id):
        raise NotAllowed("Only system accounts write without being friends.")
    if not CLIENT_MSG_ID.fullmatch(client_msg_id) or not text.strip():
        raise InvalidContent("A system message needs text and a valid client_msg_id.")
    text = text[: settings.MESSAGING_TEXT_MAX_CHARS]
    conversation = direct_conversation_ensure(user_id, recipient_id)
    previous = _previous_send(user_id, client_msg_id, conversation.pk)
    if previous is not None:
        return previous
    with transaction.atomic():
        message = event_append(
            conversation_lock(conversation.pk),
            sender_id=user_id,
            kind=MessageKind.TEXT,
            body={"text": text},
            client_msg_id=client_msg_id,
        )
    return SendAck(
        message.pk, conversation.pk, message.seq, client_msg_id, message.created_at, duplicate=False
    )
