"""A packet's bubble state in members' sync logs (`message_update` entries,
docs/protocol.md): each member's own view, so "opened by me" and "my amount"
are theirs, and the sender's shows who opened it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils import timezone

from messaging.models import Membership
from redpackets.models import Grab, Packet, PacketState
from wechat_core.sync.log import entries_append
from wechat_core.sync.models import EntryKind, SyncEntry, UserSequence


def bubble_state(packet: Packet) -> str:
    """open, finished or expired (an open packet past its expiry is expired, even
    before the refund task has run)."""
    if packet.state == PacketState.OPEN and packet.expires_at <= timezone.now():
        return PacketState.EXPIRED
    return str(packet.state)


def update_payload(
    packet: Packet, user_id: int, grab: Grab | None, *, opener: Grab | None = None
) -> dict[str, Any]:
    """What one member's devices learn: the packet's state and their own grab; the
    sender also learns the grab that caused the update (`opened_by`)."""
    payload: dict[str, Any] = {
        "message": packet.message_id,
        "redpacket": {
            "packet_id": packet.pk,
            "state": bubble_state(packet),
            "opened": grab is not None,
            "amount": grab.amount if grab is not None else None,
            "credit": str(grab.credit_state) if grab is not None else None,
            "opened_count": packet.shares - packet.remaining_shares,
            "shares": packet.shares,
        },
    }
    info = payload["redpacket"]
    if user_id == packet.sender_id:
        info["refunded_amount"] = packet.refunded_amount
        if opener is not None:
            info["opened_by"] = {"user": opener.user_id, "amount": opener.amount}
    return payload


def updates_append(
    packet: Packet, users: Iterable[int], grabs: Mapping[int, Grab], *, opener: Grab | None = None
) -> None:
    """One `message_update` entry for each of `users` (one call per transaction:
    it locks their sequences in id order)."""
    entries_append(
        SyncEntry(
            user_id=user_id,
            kind=EntryKind.MESSAGE_UPDATE,
            conversation_id=packet.conversation_id,
            payload=update_payload(packet, user_id, grabs.get(user_id), opener=opener),
        )
        for user_id in sorted(set(users))
    )


def updates_write(packet_id: int, users: Iterable[int], *, opener: Grab | None = None) -> None:
    """Write each user's view of the packet as it is now (inside a transaction).

    The users' sync sequences are locked (in id order, as entries_append does)
    before the packet and its grabs are read: two writers for one user run one
    after the other, and the later one reads the later state, so a user's
    entries about a packet never go back in time."""
    ids = sorted(set(users))
    list(
        UserSequence.objects.select_for_update(no_key=True)
        .filter(user_id__in=ids)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    packet = Packet.objects.get(pk=packet_id)
    grabs = {g.user_id: g for g in Grab.objects.filter(packet_id=packet_id, user_id__in=ids)}
    updates_append(packet, ids, grabs, opener=opener)


def members_of(conversation_id: int) -> list[int]:
    return list(
        Membership.objects.filter(
            conversation_id=conversation_id, left_seq__isnull=True
        ).values_list("user_id", flat=True)
    )
