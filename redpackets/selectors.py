"""Reads of red packets: a packet's details (who got how much and when, the
luckiest once finished, my own grab), and the covers a sender may choose."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from accounts.models import User
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.models import Conversation, Membership, Message
from redpackets.covers import covers_catalogue
from redpackets.exceptions import PacketNotFound
from redpackets.models import Grab, Packet, PacketKind, PacketState
from redpackets.services.updates import bubble_state


@dataclass(frozen=True, slots=True)
class GrabLine:
    user_id: int
    nickname: str
    amount: int
    created_at: object
    credit: str


@dataclass(frozen=True, slots=True)
class PacketDetail:
    packet: Packet
    state: str
    sender_nickname: str
    grabs: list[GrabLine]
    mine: Grab | None
    luckiest: int | None  # user id; lucky packets, once every share is taken


def packets_visible_to(user_id: int) -> QuerySet[Packet]:
    """Packets whose message the user can see: in a conversation they are in, sent
    since they joined it (as messaging hides older messages from them). Annotated
    with the conversation's `conversation_kind`."""
    seq = Message.objects.filter(pk=OuterRef(OuterRef("message_id"))).values("seq")[:1]
    member = Membership.objects.filter(
        conversation_id=OuterRef("conversation_id"),
        user_id=user_id,
        left_seq__isnull=True,
        joined_seq__lte=Subquery(seq),
    )
    kind = Conversation.objects.filter(pk=OuterRef("conversation_id")).values("kind")[:1]
    return Packet.objects.filter(Exists(member), message_id__isnull=False).annotate(
        conversation_kind=Subquery(kind)
    )


def packet_detail(*, ticket: VerifiedTicket, user_id: int, packet_id: int) -> PacketDetail:
    """A packet of a conversation the user is in, with its grabs (oldest first)."""
    ticket_require(ticket, user_id=user_id)
    packet = Packet.objects.filter(pk=packet_id, message_id__isnull=False).first()
    if (
        packet is None
        or not Membership.objects.filter(
            conversation_id=packet.conversation_id, user_id=user_id, left_seq__isnull=True
        ).exists()
    ):
        raise PacketNotFound()
    grabs = list(Grab.objects.filter(packet=packet).order_by("share_index"))
    names = dict(
        User.objects.filter(pk__in={g.user_id for g in grabs} | {packet.sender_id}).values_list(
            "pk", "nickname"
        )
    )
    lines = [
        GrabLine(g.user_id, names.get(g.user_id, ""), g.amount, g.created_at, g.credit_state)
        for g in grabs
    ]
    luckiest = None
    if packet.kind == PacketKind.LUCKY and packet.state == PacketState.FINISHED and grabs:
        # Ties go to the earlier grab, as WeChat's 手气最佳 does.
        luckiest = max(grabs, key=lambda g: (g.amount, -g.share_index)).user_id
    mine = next((g for g in grabs if g.user_id == user_id), None)
    return PacketDetail(
        packet, bubble_state(packet), names.get(packet.sender_id, ""), lines, mine, luckiest
    )


def covers_list() -> list[tuple[str, str]]:
    """(id, title) of every cover; just the default one if the catalogue is unreadable."""
    try:
        return list(covers_catalogue().items())
    except Exception:
        return [("default", "Red packet")]
