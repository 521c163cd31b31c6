"""Sending a red packet: in ONE transaction, the money from the sender's wallet into
the packet's escrow, the packet row, and the `redpacket` message that carries it.
Idempotent by the sender's client id: a retry returns the first packet."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from grayrelease.evaluation import evaluate
from grayrelease.selectors import subject_for_ticket
from grayrelease.types import Reason
from messaging.exceptions import ConversationNotFound
from messaging.models import Conversation, ConversationKind, Membership
from messaging.services.sending import message_send_kind
from redpackets.covers import Cover, cover_resolve
from redpackets.exceptions import ClientIdReused, PacketInvalid, RedPacketsDisabled
from redpackets.gate import gate_rebuild
from redpackets.models import Packet, PacketKind
from wallet.models import AccountKind, TransactionKind
from wallet.selectors import ledger_account_is
from wallet.services.ledger import escrow_account_open
from wallet.services.wallets import wallet_spend
from wechat_core.metrics import counter
from wechat_core.transactions import after_commit

MESSAGE_KIND = "redpacket"
CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
PACKETS_SENT = counter(
    "redpackets_sent_total",
    "Red packets sent (not repeats of a client id), by kind and conversation kind.",
    ["kind", "conversation"],
)
PACKETS_FEN = counter("redpackets_sent_fen_total", "Fen put into red packets.", [])


@dataclass(frozen=True, slots=True)
class PacketRequest:
    conversation_id: int
    client_id: str
    kind: str
    total_amount: int
    shares: int
    greeting: str = ""
    cover: str | None = None
    surname: str | None = None
    # System callers only, never from a client's request: a budget account that gets
    # the refund of unopened shares instead of the sender's wallet (services.refunds).
    refund_account_id: int | None = None


@dataclass(frozen=True, slots=True)
class SentPacket:
    packet: Packet
    duplicate: bool
    cover_fallback: bool


def redpackets_enabled(*, ticket: VerifiedTicket, user_id: int) -> bool:
    """The gray-release feature REDPACKETS_FEATURE for this user's device; with no
    such feature declared, REDPACKETS_ENABLED_WITHOUT_FEATURE decides."""
    subject = subject_for_ticket(ticket=ticket, user_id=user_id)
    decision = evaluate(key=settings.REDPACKETS_FEATURE, subject=subject)
    if decision.reason == Reason.UNKNOWN_FEATURE:
        return bool(settings.REDPACKETS_ENABLED_WITHOUT_FEATURE)
    return decision.enabled


def _invalid(message: str, field: str, **details: Any) -> PacketInvalid:
    return PacketInvalid(message, details={"field": field, **details})


def _check(request: PacketRequest) -> None:
    if not CLIENT_ID.fullmatch(request.client_id):
        raise _invalid("client_id must be 1-64 letters, digits or . _ : -", "client_id")
    if request.kind not in PacketKind.values:
        raise _invalid("kind must be lucky or equal.", "kind")
    most = settings.REDPACKETS_MAX_SHARES
    if not 1 <= request.shares <= most:
        raise _invalid(f"A packet has 1 to {most} shares.", "shares", limit=most)
    largest = settings.REDPACKETS_MAX_TOTAL_FEN
    if not 1 <= request.total_amount <= largest:
        raise _invalid(f"A packet holds at most {largest} fen.", "total_amount", limit=largest)
    least = settings.REDPACKETS_MIN_SHARE_FEN
    if request.total_amount < least * request.shares:
        raise _invalid(
            f"Each share needs at least {least} fen.", "total_amount", limit=least * request.shares
        )
    if request.kind == PacketKind.EQUAL and request.total_amount % request.shares:
        # WeChat's equal packet is "amount per share x shares": an exact multiple.
        raise _invalid("An equal packet's total is a multiple of its shares.", "total_amount")
    longest = settings.REDPACKETS_GREETING_MAX_CHARS
    if len(request.greeting) > longest:
        raise _invalid(f"A greeting has at most {longest} characters.", "greeting", limit=longest)
    if request.refund_account_id is not None and not ledger_account_is(
        account_id=request.refund_account_id, kind=AccountKind.BUDGET
    ):
        raise _invalid("A refund goes to the sender or to a budget account.", "refund_account")


def _conversation_for(user_id: int, request: PacketRequest) -> Conversation:
    conversation = Conversation.objects.filter(pk=request.conversation_id).first()
    member = Membership.objects.filter(
        conversation_id=request.conversation_id, user_id=user_id, left_seq__isnull=True
    ).exists()
    if conversation is None or not member:
        raise ConversationNotFound()
    if conversation.kind == ConversationKind.DIRECT:
        if request.shares != 1:
            raise _invalid("A packet in a 1:1 chat has one share.", "shares", limit=1)
    elif conversation.kind == ConversationKind.GROUP:
        if request.shares > conversation.member_count:
            raise _invalid(
                f"The group has {conversation.member_count} members: at most that many shares.",
                "shares",
                limit=conversation.member_count,
            )
    else:
        raise _invalid("Red packets go to 1:1 chats and groups.", "conversation")
    return conversation


def _same(packet: Packet, request: PacketRequest) -> bool:
    return (
        packet.conversation_id == request.conversation_id
        and packet.kind == request.kind
        and packet.total_amount == request.total_amount
        and packet.shares == request.shares
        and packet.refund_account_id == request.refund_account_id
    )


def _previous(user_id: int, request: PacketRequest) -> SentPacket | None:
    earlier = Packet.objects.filter(sender_id=user_id, client_id=request.client_id).first()
    if earlier is None:
        return None
    if not _same(earlier, request):
        raise ClientIdReused()
    return SentPacket(earlier, duplicate=True, cover_fallback=False)


def message_body(packet: Packet) -> dict[str, Any]:
    """The `redpacket` message's body (docs/protocol.md)."""
    return {
        "packet_id": packet.pk,
        "kind": packet.kind,
        "greeting": packet.greeting,
        "cover": packet.cover,
        "shares": packet.shares,
        "expires_at": packet.expires_at.isoformat(timespec="seconds"),
    }


def _create(
    ticket: VerifiedTicket, user_id: int, request: PacketRequest, kind: str, cover: Cover
) -> Packet:
    now = timezone.now()
    escrow = escrow_account_open(reference=f"redpacket:{uuid.uuid4().hex}")
    packet = Packet.objects.create(
        sender_id=user_id,
        conversation_id=request.conversation_id,
        client_id=request.client_id,
        kind=request.kind,
        total_amount=request.total_amount,
        shares=request.shares,
        greeting=request.greeting,
        cover=cover.as_body(),
        escrow=escrow,
        refund_account_id=request.refund_account_id,
        remaining_amount=request.total_amount,
        remaining_shares=request.shares,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.REDPACKETS_EXPIRE_SECONDS),
    )
    wallet_spend(
        ticket=ticket,
        user_id=user_id,
        to_account_id=escrow.pk,
        amount=request.total_amount,
        idempotency_key=f"redpacket:{packet.pk}:send",
        kind=TransactionKind.PACKET_SEND,
        reason="Red packet sent",
        metadata={"packet": packet.pk, "conversation": request.conversation_id},
    )
    ack = message_send_kind(
        ticket=ticket,
        user_id=user_id,
        conversation_id=request.conversation_id,
        client_msg_id=f"redpacket-{packet.pk}",
        kind=MESSAGE_KIND,
        body=message_body(packet),
    )
    packet.message_id = ack.message_id
    packet.save(update_fields=["message_id"])
    ttl = settings.REDPACKETS_EXPIRE_SECONDS + settings.REDPACKETS_GATE_LINGER_SECONDS
    after_commit(lambda: gate_rebuild(packet, packet.shares, [], ttl), name="redpacket_gate_init")
    after_commit(lambda: PACKETS_SENT.inc(packet.kind, kind), name="metrics")
    after_commit(lambda: PACKETS_FEN.inc(amount=packet.total_amount), name="metrics")
    return packet


def packet_send(*, ticket: VerifiedTicket, user_id: int, request: PacketRequest) -> SentPacket:
    """Send a red packet into a conversation the user is in (see the module).

    Errors: redpackets_disabled, redpacket_invalid (details.field, details.limit),
    conversation_not_found, insufficient_funds, redpacket_client_id_reused, and
    whatever a message send refuses (not_friends, blocked, throttled)."""
    ticket_require(ticket, user_id=user_id)
    _check(request)
    previous = _previous(user_id, request)
    if previous is not None:
        return previous
    if not redpackets_enabled(ticket=ticket, user_id=user_id):
        raise RedPacketsDisabled()
    conversation = _conversation_for(user_id, request)
    cover = cover_resolve(request.cover, request.surname)
    try:
        with transaction.atomic():
            packet = _create(ticket, user_id, request, conversation.kind, cover)
    except IntegrityError:
        # The same client id raced in on another connection; that one won.
        previous = _previous(user_id, request)
        if previous is None:
            raise
        return previous
    return SentPacket(packet, duplicate=False, cover_fallback=cover.fallback)
