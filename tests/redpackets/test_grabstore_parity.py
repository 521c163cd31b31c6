"""The two grab stores keep one set of rules (redpackets.services.grabstore): on
PostgreSQL, where both run, the same grabs with the same draws take the same
shares, leave the packet in the same state and refuse alike."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redpackets.models import Grab, Packet
from redpackets.services.grabstore import GrabStore, PortableGrabStore, PostgresGrabStore
from redpackets.services.sending import packet_send
from tests.redpackets.conftest import Chat, group_chat, packet_request

pytestmark = pytest.mark.usefixtures("balanced_now")

STORES: dict[str, GrabStore] = {"portable": PortableGrabStore(), "postgresql": PostgresGrabStore()}
MEMBERS = 6


def _packet(chat: Chat, kind: str, total: int, shares: int) -> Packet:
    owner = chat.sender
    request = packet_request(
        chat, client_id=uuid.uuid4().hex, kind=kind, total_amount=total, shares=shares
    )
    return packet_send(ticket=owner.ticket, user_id=owner.user.pk, request=request).packet


def _grab_all(store: GrabStore, packet: Packet, chat: Chat, draws: list[int]) -> list[Any]:
    """Every member but the owner grabs in turn (one draw each); what each got, and
    the packet as it is then, stored and as the store's answer says."""
    seen: list[Any] = []
    for session, draw in zip(chat.sessions[1:], draws, strict=False):
        with transaction.atomic():
            taken = store.take(packet, session.user.pk, now=timezone.now(), draw=draw)
        grab = taken.grab
        stored = Packet.objects.get(pk=packet.pk)
        answered = taken.packet
        seen.append((
            taken.outcome,
            (grab.share_index, grab.amount, grab.credit_state) if grab else None,
            (answered.remaining_shares, answered.remaining_amount, answered.state),
            (stored.remaining_shares, stored.remaining_amount, stored.state),
            stored.finished_at is not None,
        ))  # fmt: skip
    return seen


@pytest.fixture
def chat(balanced_now: None) -> Chat:
    return group_chat(MEMBERS, balance=10_000_000)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["lucky", "equal"]),
    shares=st.integers(1, MEMBERS - 2),
    per_share=st.integers(1, 400),
    extra=st.integers(0, 999),
    draws=st.lists(st.integers(0, 2**62 - 1), min_size=MEMBERS - 1, max_size=MEMBERS - 1),
)
def test_take__both_stores__take_the_same_shares_and_refuse_once_finished(
    chat: Chat, kind: str, shares: int, per_share: int, extra: int, draws: list[int]
) -> None:
    total = shares * per_share + (extra if kind == "lucky" else 0)  # equal: a multiple
    results = {
        name: _grab_all(store, _packet(chat, kind, total, shares), chat, draws)
        for name, store in STORES.items()
    }
    assert results["postgresql"] == results["portable"]
    # and the rules themselves: every share taken once, summing to the total
    outcomes = [row[0] for row in results["portable"]]
    assert outcomes == ["grabbed"] * shares + ["finished"] * (MEMBERS - 1 - shares)
    assert sum(row[1][1] for row in results["portable"] if row[1]) == total


@pytest.mark.parametrize("name", STORES)
def test_take__an_expired_packet__is_refused_expired_and_nothing_moves(
    chat: Chat, name: str
) -> None:
    packet = _packet(chat, "lucky", 500, 2)
    Packet.objects.filter(pk=packet.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with transaction.atomic():
        taken = STORES[name].take(packet, chat.sessions[1].user.pk, now=timezone.now(), draw=7)
    assert (taken.outcome, taken.grab) == ("expired", None)
    assert (taken.packet.remaining_shares, taken.packet.remaining_amount) == (2, 500)
    assert not Grab.objects.filter(packet=packet).exists()
