"""Sending messages (idempotent by client message id), recalling them, and read positions."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.exceptions import BlockedByUser, YouBlockedUser
from accounts.selectors import contact_relation
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.exceptions import (
    AttachmentNotFound,
    ClientMessageIdReused,
    ConversationNotFound,
    InvalidContent,
    MessageNotFound,
    MessageRejected,
    NotAllowed,
    NotFriends,
    RecallWindowPassed,
    SystemAccountReplies,
    Throttled,
)
from messaging.models import (
    Attachment,
    Conversation,
    ConversationKind,
    MemberRole,
    Membership,
    Message,
    MessageKind,
    direct_peer,
)
from messaging.replication import conversation_master, message_forward, read_replicate
from messaging.selectors import account_is_system
from messaging.services.attachments import attachment_release_recalled
from messaging.services.events import (
    conversation_lock,
    event_append,
    event_store,
    membership_require,
)
from messaging.services.kinds import message_kind_spec
from messaging.services.policies import SentMessage, kind_policy
from messaging.services.spam import SpamCandidate, SpamVerdict, spam_check
from messaging.store import store
from messaging.store.base import ConversationHead
from messaging.types import OutgoingContent, SendAck
from wechat_core import datacenters
from wechat_core.metrics import counter
from wechat_core.ratelimit import window_hit_leased
from wechat_core.sync.log import entry_append
from wechat_core.sync.models import EntryKind
from wechat_core.transactions import after_commit

CLIENT_MSG_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CONTENT_KINDS = {MessageKind.TEXT, MessageKind.IMAGE, MessageKind.FILE}
SEND_SCOPE = "message-send"
MESSAGES_SENT = counter(
    "messaging_messages_sent_total",
    "Messages people sent (not repeats of a client_msg_id), by kind and conversation kind.",
    ["kind", "conversation"],
    process_labels=True,
)


def _ack(message: Message, *, duplicate: bool) -> SendAck:
    return SendAck(
        message_id=message.pk,
        conversation_id=message.conversation_id,
        seq=message.seq,
        client_msg_id=message.client_msg_id or "",
        created_at=message.created_at,
        duplicate=duplicate,
    )


def _previous_send(user_id: int, client_msg_id: str, conversation_id: int) -> SendAck | None:
    earlier = store().previous_send(user_id, client_msg_id)
    if earlier is None:
        return None
    if earlier.conversation_id != conversation_id:
        raise ClientMessageIdReused()
    return SendAck(
        earlier.message_id,
        earlier.conversation_id,
        earlier.seq,
        client_msg_id,
        earlier.created_at,
        duplicate=True,
    )


def _throttle(user_id: int) -> None:
    limit = settings.MESSAGING_SENDS_PER_MINUTE
    window = settings.MESSAGING_SEND_WINDOW_SECONDS
    # Leased: every send passes here, and a Redis round trip per message was 9 %
    # of the server's time under load (docs/performance.md).
    hits = window_hit_leased(
        scope=SEND_SCOPE, identity=str(user_id), window_seconds=window, limit=limit
    )
    if hits.count > limit:
        tier = 2 if hits.count > 2 * limit else 1
        raise Throttled(
            f"More than {limit} messages in {window} seconds; wait before sending more.",
            retry_after=hits.retry_after,
            tier=tier,
        )


def _check_content(content: OutgoingContent) -> None:
    if content.kind not in CONTENT_KINDS:
        raise InvalidContent(f"kind must be one of {', '.join(sorted(CONTENT_KINDS))}.")
    if len(content.text) > settings.MESSAGING_TEXT_MAX_CHARS:
        raise InvalidContent(
            f"The text has {len(content.text)} characters; the limit is "
            f"{settings.MESSAGING_TEXT_MAX_CHARS}.",
            details={"limit": settings.MESSAGING_TEXT_MAX_CHARS},
        )
    if content.kind == MessageKind.TEXT and not content.text.strip():
        raise InvalidContent("A text message needs some text.")
    if content.kind != MessageKind.TEXT and content.attachment_id is None:
        raise InvalidContent(f"A {content.kind} message needs an uploaded attachment.")
    if len(content.mentions) > settings.MESSAGING_MENTIONS_MAX:
        raise InvalidContent(f"At most {settings.MESSAGING_MENTIONS_MAX} mentions.")


def _check_direct_peer(ticket: VerifiedTicket, user_id: int, direct_key: str | None) -> None:
    peer_id = direct_peer(direct_key, user_id)
    relation = contact_relation(ticket=ticket, user_id=user_id, other_id=peer_id)
    if relation.they_blocked_me:
        raise BlockedByUser()
    if relation.i_blocked_them:
        raise YouBlockedUser()
    if not (relation.i_have_them and relation.they_have_me):
        # Nobody is friends with a system account; say so rather than not_friends.
        if account_is_system(user_id=peer_id):
            raise SystemAccountReplies()
        raise NotFriends()


def _body(
    conversation_id: int, head: ConversationHead, user_id: int, content: OutgoingContent
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": content.text} if content.text else {}
    if content.mention_all:
        if head.kind != ConversationKind.GROUP or head.role == MemberRole.MEMBER:
            raise NotAllowed("Only a group's owner or admins may mention everyone.")
        body["mention_all"] = True
    if content.mentions:
        members = set(
            Membership.objects.filter(
                conversation_id=conversation_id, user_id__in=content.mentions, left_seq__isnull=True
            ).values_list("user_id", flat=True)
        )
        if members != set(content.mentions):
            raise InvalidContent("Only members of the conversation can be mentioned.")
        body["mentions"] = sorted(members)
    if content.reply_to is not None:
        quoted = Message.objects.filter(
            pk=content.reply_to, conversation_id=conversation_id, kind__in=CONTENT_KINDS
        ).first()
        if quoted is None:
            raise InvalidContent("reply_to must be a message of this conversation.")
        body["reply_to"] = quoted.pk
    if content.attachment_id is not None:
        attachment = (
            Attachment.objects.select_for_update(no_key=True)
            .filter(pk=content.attachment_id, owner_id=user_id, kind=content.kind)
            .first()
        )
        if attachment is None or attachment.conversation_id not in (None, conversation_id):
            raise AttachmentNotFound()
        attachment.conversation_id = conversation_id
        attachment.save(update_fields=["conversation"])
        body.update(
            attachment=str(attachment.pk),
            name=attachment.name,
            size=attachment.size,
            content_type=attachment.content_type,
        )
    return body


def _lock_head(conversation_id: int, user_id: int) -> ConversationHead:
    """The conversation locked for numbering, and the sender's role (members only)."""
    head = store().conversation_head(conversation_id, user_id)
    if head is None or head.role is None:
        raise ConversationNotFound()
    return head


def _append(
    conversation_id: int,
    head: ConversationHead,
    user_id: int,
    kind: str,
    body: dict[str, Any],
    client_msg_id: str,
) -> tuple[int, int, dt.datetime]:
    """Store the message and deliver it (inline or scheduled); (id, seq, created_at)."""
    appended = event_store(
        conversation_id=conversation_id,
        member_count=head.member_count,
        sender_id=user_id,
        kind=kind,
        body=body,
        client_msg_id=client_msg_id,
    )
    return appended.id, appended.seq, appended.created_at


def message_send(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    client_msg_id: str,
    content: OutgoingContent,
) -> SendAck:
    """Send a message. A retry with the same client_msg_id returns the first ack."""
    ticket_require(ticket, user_id=user_id)
    if not CLIENT_MSG_ID.fullmatch(client_msg_id):
        raise InvalidContent("client_msg_id must be 1-64 letters, digits or . _ : -")
    previous = _previous_send(user_id, client_msg_id, conversation_id)
    if previous is not None:
        return previous
    _check_content(content)
    _throttle(user_id)
    candidate = SpamCandidate(sender_id=user_id, conversation_id=conversation_id, text=content.text)
    if spam_check(candidate, ticket=ticket) is SpamVerdict.SPAM:
        raise MessageRejected()
    return _store(
        ticket,
        user_id,
        conversation_id,
        client_msg_id,
        content,
        lambda head: _body(conversation_id, head, user_id, content),
    )


def message_send_checked(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    client_msg_id: str,
    content: OutgoingContent,
) -> SendAck:
    """The rest of message_send once its checks before the database passed (ticket,
    client_msg_id, content, rate, spam): the event loop's send path
    (services.sending_async) runs a send the group commit refused through here,
    which gives its exact error or its duplicate's ack without counting it twice."""
    ticket_require(ticket, user_id=user_id)
    previous = _previous_send(user_id, client_msg_id, conversation_id)
    if previous is not None:
        return previous
    return _store(
        ticket,
        user_id,
        conversation_id,
        client_msg_id,
        content,
        lambda head: _body(conversation_id, head, user_id, content),
    )


def previous_send(*, user_id: int, client_msg_id: str, conversation_id: int) -> SendAck | None:
    """The ack of the user's earlier send with this client_msg_id, if any
    (ClientMessageIdReused when it went to another conversation)."""
    return _previous_send(user_id, client_msg_id, conversation_id)


def send_precheck(
    *, ticket: VerifiedTicket, user_id: int, conversation_id: int, content: OutgoingContent
) -> None:
    """message_send's checks that need no database: content, rate, spam (the
    spam filter must be one that runs inline: spam.spam_check_runs_inline)."""
    _check_content(content)
    _throttle(user_id)
    candidate = SpamCandidate(sender_id=user_id, conversation_id=conversation_id, text=content.text)
    if spam_check(candidate, ticket=ticket) is SpamVerdict.SPAM:
        raise MessageRejected()


def sent_count(kind: str, conversation_kind: str) -> None:
    """Count a sent message (what _store counts after its commit)."""
    MESSAGES_SENT.inc(kind, conversation_kind)


def message_send_kind(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    client_msg_id: str,
    kind: str,
    body: dict[str, Any],
) -> SendAck:
    """Send a message of a kind another app registered (services.kinds), with the
    body that app built, through the same checks, numbering and delivery as any
    send. Runs in the caller's transaction when there is one (a red packet's
    escrow is funded in the same commit). Idempotent by client_msg_id."""
    ticket_require(ticket, user_id=user_id)
    if message_kind_spec(kind) is None:
        raise InvalidContent(f"No message kind {kind!r} is registered.")
    if not CLIENT_MSG_ID.fullmatch(client_msg_id):
        raise InvalidContent("client_msg_id must be 1-64 letters, digits or . _ : -")
    previous = _previous_send(user_id, client_msg_id, conversation_id)
    if previous is not None:
        return previous
    _throttle(user_id)
    return _store(
        ticket,
        user_id,
        conversation_id,
        client_msg_id,
        OutgoingContent(kind=kind),
        lambda head: dict(body),
    )


def _store(
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    client_msg_id: str,
    content: OutgoingContent,
    build_body: Callable[[ConversationHead], dict[str, Any]],
) -> SendAck:
    """Check the sender may write here, then number, store and deliver the message."""
    if conversation_master(conversation_id) != datacenters.here():
        return _forward(ticket, user_id, conversation_id, client_msg_id, content, build_body)
    try:
        with transaction.atomic():
            head = _lock_head(conversation_id, user_id)
            policy = kind_policy(head.kind)
            checked: Any = None
            if head.kind == ConversationKind.DIRECT:
                _check_direct_peer(ticket, user_id, head.direct_key)
            elif policy is not None:
                checked = policy.before_send(
                    user_id=user_id, conversation_id=conversation_id, content=content
                )
            elif head.kind != ConversationKind.GROUP:
                raise NotAllowed("Nobody handles this kind of conversation.")
            body = build_body(head)
            message_id, seq, created_at = _append(
                conversation_id, head, user_id, content.kind, body, client_msg_id
            )
            after_commit(lambda: MESSAGES_SENT.inc(content.kind, head.kind), name="metrics")
            if policy is not None:
                policy.after_send(
                    sent=SentMessage(
                        message_id,
                        conversation_id,
                        user_id,
                        content.kind,
                        content.text,
                        created_at,
                    ),
                    checked=checked,
                )
    except IntegrityError:
        # The same client_msg_id raced in on another connection; that one won.
        previous = _previous_send(user_id, client_msg_id, conversation_id)
        if previous is None:
            raise
        return previous
    return SendAck(message_id, conversation_id, seq, client_msg_id, created_at)


@transaction.atomic
def _forward(
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    client_msg_id: str,
    content: OutgoingContent,
    build_body: Callable[[ConversationHead], dict[str, Any]],
) -> SendAck:
    """The conversation is mastered in another data centre: check the send against
    the local copy, and forward it there through the replication log (its number
    comes back with the event). Acknowledged as forwarded: message id and seq 0."""
    head = _lock_head(conversation_id, user_id)
    if head.kind == ConversationKind.DIRECT:
        _check_direct_peer(ticket, user_id, head.direct_key)
    elif head.kind != ConversationKind.GROUP:
        raise NotAllowed("Only 1:1 and group chats cross data centres.")
    body = build_body(head)
    message_forward(
        sender_id=user_id,
        conversation_id=conversation_id,
        kind=content.kind,
        body=body,
        client_msg_id=client_msg_id,
    )
    return SendAck(0, conversation_id, 0, client_msg_id, timezone.now())


def _lock_service_head(conversation_id: int, sender_id: int) -> ConversationHead:
    """The official conversation owned by this identity, locked for numbering."""
    owned = Conversation.objects.filter(
        pk=conversation_id, owner_id=sender_id, kind=ConversationKind.OFFICIAL
    )
    if not owned.exists():
        raise ConversationNotFound()
    head = store().conversation_head(conversation_id, sender_id)
    if head is None:
        raise ConversationNotFound()
    return head


def message_send_as_service(
    *,
    sender_id: int,
    conversation_id: int,
    kind: MessageKind,
    body: dict[str, Any],
    client_msg_id: str,
) -> SendAck:
    """A message from a service identity (an official account), which holds no ticket
    and logs in nowhere: the caller is the service that speaks for it, into an
    `official` conversation the identity owns. Idempotent by client_msg_id, like a
    member's send, so a retried task never posts twice."""
    if not CLIENT_MSG_ID.fullmatch(client_msg_id):
        raise InvalidContent("client_msg_id must be 1-64 letters, digits or . _ : -")
    previous = _previous_send(sender_id, client_msg_id, conversation_id)
    if previous is not None:
        return previous
    try:
        with transaction.atomic():
            head = _lock_service_head(conversation_id, sender_id)
            message_id, seq, created_at = _append(
                conversation_id, head, sender_id, kind, body, client_msg_id
            )
    except IntegrityError:
        previous = _previous_send(sender_id, client_msg_id, conversation_id)
        if previous is None:
            raise
        return previous
    return SendAck(message_id, conversation_id, seq, client_msg_id, created_at)


@transaction.atomic
def message_recall(*, ticket: VerifiedTicket, user_id: int, message_id: int) -> SendAck:
    """Recall one's own message within MESSAGING_RECALL_WINDOW_SECONDS: every member's
    log gets a recall event, and the message reads as recalled from then on."""
    ticket_require(ticket, user_id=user_id)
    target = Message.objects.filter(pk=message_id).only("conversation_id").first()
    if target is None:
        raise MessageNotFound()
    conversation = conversation_lock(target.conversation_id)
    # A message the user cannot see (not in the conversation, or from before
    # they joined) does not exist for them: the same answer as an unknown id.
    membership = Membership.objects.filter(
        conversation=conversation, user_id=user_id, left_seq__isnull=True
    ).first()
    target = Message.objects.select_for_update(no_key=True).get(pk=message_id)
    if membership is None or target.seq < membership.joined_seq:
        raise MessageNotFound()
    if target.sender_id != user_id or target.kind not in CONTENT_KINDS:
        raise NotAllowed("Only the sender can recall a message.")
    if target.recalled_at is not None:
        notice = Message.objects.filter(
            conversation=conversation, kind=MessageKind.RECALL, body__message_id=target.pk
        ).first()
        if notice is not None:
            return _ack(notice, duplicate=True)
    window = timedelta(seconds=settings.MESSAGING_RECALL_WINDOW_SECONDS)
    if timezone.now() - target.created_at > window:
        raise RecallWindowPassed(
            f"Messages can be recalled for {settings.MESSAGING_RECALL_WINDOW_SECONDS} seconds."
        )
    target.recalled_at = timezone.now()
    target.save(update_fields=["recalled_at"])
    attachment_release_recalled(message=target)
    notice = event_append(
        conversation, sender_id=user_id, kind=MessageKind.RECALL, body={"message_id": target.pk}
    )
    return _ack(notice, duplicate=False)


@transaction.atomic
def conversation_read(
    *, ticket: VerifiedTicket, user_id: int, conversation_id: int, seq: int
) -> int:
    """Move the user's read position forward (never back); the user's other devices
    learn it through a `read` entry, the other data centres' copies of the
    membership through the replication log. Returns the read position."""
    ticket_require(ticket, user_id=user_id)
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise ConversationNotFound()
    membership = membership_require(conversation, user_id)
    target = max(0, min(seq, conversation.last_seq))
    updated = Membership.objects.filter(pk=membership.pk, read_seq__lt=target).update(
        read_seq=target
    )
    if updated:
        entry_append(
            user_id=user_id,
            kind=EntryKind.READ,
            conversation_id=conversation_id,
            payload={"conversation": conversation_id, "read_seq": target},
        )
        read_replicate(conversation, user_id=user_id, read_seq=target)
        return target
    return max(target, membership.read_seq)
