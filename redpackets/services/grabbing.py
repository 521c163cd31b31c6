"""Grabbing a share (seed 004: 抢 then 拆, the user's action first).

1. A cheap gate (redpackets.gate): a user who grabbed before, or who comes when
   no share is left, is answered without a database transaction.
2. For those through the gate, one transaction: the packet's row locked, the
   share's amount decided now (redpackets.splitting), the grab recorded, the
   packet's remainder moved (one statement on PostgreSQL: services.grabstore).
   Over the websocket this step runs one at a time per packet in each process,
   off the threads that answer the gate's losers (GrabPending). Then, in a
   short transaction of its own, the bubble's state written into the sync logs
   of the grabber and the sender (of every member, when the last share goes).
3. After commit, crediting the grabber's wallet is a task on `payout_fast`
   (services.crediting): the grab is final when recorded; its amount shows as
   "arriving" until the credit lands, exactly once.

Each share goes at most once (unique share index), each member at most once
(unique (packet, user)); in a 1:1 chat the sender cannot open their own packet;
an expired or finished packet refuses. Gray release: grabbing stays allowed when
the feature is off (docs/redpackets.md): money already sent must reach someone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.models import ConversationKind
from redpackets.exceptions import OwnPacket, PacketNotFound
from redpackets.gate import GateAnswer, gate_pass, gate_rebuild, gate_release
from redpackets.models import Grab, Packet, PacketState
from redpackets.selectors import packets_visible_to
from redpackets.services.grabstore import grab_store, new_draw
from redpackets.services.updates import members_of, updates_write
from wechat_core.metrics import counter
from wechat_core.transactions import enqueue_on_commit

logger = logging.getLogger(__name__)
BUBBLE_FAILURES = counter(
    "redpackets_bubble_update_failures_total",
    "Bubble updates after a committed grab that failed (the grab stands).",
    [],
)
GRABS = counter(
    "redpackets_grabs_total",
    "Grab attempts by outcome (grabbed, already, finished, expired) and where they were "
    "answered (gate: Redis only; database).",
    ["outcome", "answered_by"],
    process_labels=True,
)


@dataclass(frozen=True, slots=True)
class GrabResult:
    """outcome: grabbed (just now), already (earlier: `grab` is it), finished, expired."""

    outcome: str
    packet: Packet
    grab: Grab | None


def _visible_packet(user_id: int, packet_id: int) -> tuple[Packet, bool]:
    """The packet, if the user can see its message (else not found), and whether it
    is in a 1:1 chat. One query: every grab pays it."""
    packet = packets_visible_to(user_id).filter(pk=packet_id).first()
    if packet is None:
        raise PacketNotFound()
    return packet, getattr(packet, "conversation_kind", None) == ConversationKind.DIRECT


def _gate_ttl(packet: Packet) -> int:
    left = (packet.expires_at - timezone.now()).total_seconds()
    return int(left) + settings.REDPACKETS_GATE_LINGER_SECONDS


def _through_gate(packet: Packet, user_id: int) -> GateAnswer:
    answer = gate_pass(packet, user_id)
    if answer == GateAnswer.MISSING:
        grabbers = list(Grab.objects.filter(packet=packet).values_list("user_id", flat=True))
        left = packet.remaining_shares if packet.state == PacketState.OPEN else 0
        gate_rebuild(packet, left, grabbers, _gate_ttl(packet))
        answer = gate_pass(packet, user_id)
    return GateAnswer.UNAVAILABLE if answer == GateAnswer.MISSING else answer


def _grab_in_db(packet: Packet, user_id: int, *, new_to_gate: bool) -> GrabResult:
    """The grab's transaction, under the packet's row lock. When the gate has just
    let this user in for the first time (`new_to_gate`), the earlier-grab query is
    skipped: the unique (packet, user) constraint refuses a second grab anyway."""
    try:
        result = _grab_locked(packet, user_id, new_to_gate=new_to_gate)
    except IntegrityError:
        packet = Packet.objects.get(pk=packet.pk)
        earlier = Grab.objects.filter(packet_id=packet.pk, user_id=user_id).first()
        if earlier is None:
            raise
        return GrabResult("already", packet, earlier)
    return result


def _bubble_after_grab(packet: Packet, grab: Grab) -> None:
    """The bubble's new state in the sync logs of the grabber and the sender (of
    every member when this grab took the last share). In its own transaction, after
    the grab's: the packet's row lock is held only as long as deciding the share
    takes, which bounds how fast a hot packet's winners go (docs/redpackets.md).
    The grab is committed whatever happens here; should this fail, the credit's
    update still tells the grabber, and the details show the rest."""
    users = (
        members_of(packet.conversation_id)
        if packet.state == PacketState.FINISHED
        else [grab.user_id, packet.sender_id]
    )
    try:
        with transaction.atomic():
            updates_write(packet.pk, users, opener=grab)
    except Exception:
        BUBBLE_FAILURES.inc()
        logger.warning("red packet %s: bubble update after a grab failed", packet.pk, exc_info=True)


def _grab_locked(packet: Packet, user_id: int, *, new_to_gate: bool) -> GrabResult:
    """The packet locked, the share decided and taken, the grab recorded: one
    statement on PostgreSQL (services.grabstore)."""
    with transaction.atomic():
        if not new_to_gate:
            earlier = Grab.objects.filter(packet=packet, user_id=user_id).first()
            if earlier is not None:
                return GrabResult("already", packet, earlier)
        taken = grab_store().take(packet, user_id, now=timezone.now(), draw=new_draw())
        if taken.grab is not None:
            # A lost enqueue (broker down) is caught up by the sweep of arriving grabs.
            enqueue_on_commit(
                "redpackets.tasks.credit_grab", taken.grab.pk, name="redpacket_credit_enqueue"
            )
        return GrabResult(taken.outcome, taken.packet, taken.grab)


@dataclass(frozen=True, slots=True)
class GrabPending:
    """A grab the gate let through: `finish` runs its transaction, which waits on
    the packet's row lock behind the other winners. The websocket runs it one at a
    time per packet in this process (`serial_key`), off the threads that answer
    the gate's losers, so that they never wait behind winners."""

    packet: Packet
    user_id: int
    answer: GateAnswer

    @property
    def serial_key(self) -> str:
        return f"redpacket:{self.packet.pk}"

    def take(self) -> GrabResult:
        """The grab's transaction (waits on the packet's row lock)."""
        packet, user_id, answer = self.packet, self.user_id, self.answer
        try:
            result = _grab_in_db(packet, user_id, new_to_gate=answer == GateAnswer.GO)
        except BaseException:
            if answer == GateAnswer.GO:
                gate_release(packet, user_id)
            raise
        if answer == GateAnswer.GO and result.outcome != "grabbed":
            # The share it reserved goes back (a user who had grabbed stays known).
            gate_release(packet, user_id, keep_member=result.grab is not None)
        GRABS.inc(result.outcome, "database")
        return result

    def complete(self, result: GrabResult) -> GrabResult:
        """After the transaction, out of the packet's line: the bubble's entries."""
        if result.outcome == "grabbed" and result.grab is not None:
            _bubble_after_grab(result.packet, result.grab)
        return result

    def finish(self) -> GrabResult:
        return self.complete(self.take())


def packet_grab_start(
    *, ticket: VerifiedTicket, user_id: int, packet_id: int
) -> GrabResult | GrabPending:
    """A grab as far as the gate: answered (no share left, grabbed before), or
    pending its transaction. Never waits on the packet's row lock."""
    ticket_require(ticket, user_id=user_id)
    packet, direct = _visible_packet(user_id, packet_id)
    if direct and packet.sender_id == user_id:
        raise OwnPacket()
    answer = _through_gate(packet, user_id)
    if answer == GateAnswer.EMPTY:
        outcome = "expired" if packet.expires_at <= timezone.now() else "finished"
        GRABS.inc(outcome, "gate")
        return GrabResult(outcome, packet, None)
    if answer == GateAnswer.AGAIN:
        earlier = Grab.objects.filter(packet=packet, user_id=user_id).first()
        if earlier is not None:
            GRABS.inc("already", "gate")
            return GrabResult("already", packet, earlier)
    return GrabPending(packet, user_id, answer)


def packet_grab(*, ticket: VerifiedTicket, user_id: int, packet_id: int) -> GrabResult:
    """Grab (open) a share of a packet in one of the user's conversations."""
    started = packet_grab_start(ticket=ticket, user_id=user_id, packet_id=packet_id)
    return started.finish() if isinstance(started, GrabPending) else started
