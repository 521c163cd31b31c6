"""Grabbing: one share per member, each share once, amounts decided at grab time,
the bubble's state in every member's sync log, and the credit exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from redpackets.exceptions import OwnPacket, PacketNotFound
from redpackets.gate import gate_drop
from redpackets.models import CreditState, Grab
from redpackets.selectors import packet_detail
from redpackets.services.crediting import grab_credit
from redpackets.services.grabbing import packet_grab
from redpackets.services.sending import packet_send
from tests.factories import Session, login_session, make_user
from tests.redpackets.conftest import Chat, direct_chat, group_chat, packet_request
from wallet.models import LedgerAccount, LedgerTransaction
from wallet.selectors import ledger_balance
from wechat_core.sync.models import SyncEntry

pytestmark = pytest.mark.usefixtures("balanced_now")


def _send(chat: Chat, **fields: Any) -> Any:
    return packet_send(
        ticket=chat.sender.ticket, user_id=chat.sender.user.pk,
        request=packet_request(chat, **fields),
    ).packet  # fmt: skip


def _grab(session: Session, packet_id: int) -> Any:
    return packet_grab(ticket=session.ticket, user_id=session.user.pk, packet_id=packet_id)


def _updates(user_id: int) -> list[dict[str, Any]]:
    entries = SyncEntry.objects.filter(user_id=user_id, kind="message_update").order_by("seq")
    return [entry.payload["redpacket"] for entry in entries if entry.payload is not None]


def test_grab__every_share_once__sums_to_the_total_and_the_rest_find_it_finished() -> None:
    # given: a lucky packet of 3 shares in a group of 5
    chat = group_chat(5)
    packet = _send(chat, total_amount=1000, shares=3)
    # when: all 5 grab (the sender may grab in a group)
    results = [_grab(session, packet.pk) for session in chat.sessions]
    # then
    assert [r.outcome for r in results] == ["grabbed"] * 3 + ["finished"] * 2
    grabs = list(Grab.objects.filter(packet=packet))
    assert sum(g.amount for g in grabs) == 1000
    assert all(g.amount >= 1 for g in grabs)
    assert sorted(g.share_index for g in grabs) == [0, 1, 2]
    packet.refresh_from_db()
    assert (packet.state, packet.remaining_shares, packet.remaining_amount) == ("finished", 0, 0)


def test_grab__twice_by_one_member__answers_their_first_share() -> None:
    chat = group_chat(3)
    packet = _send(chat, total_amount=900, shares=2)
    first = _grab(chat.sessions[1], packet.pk)
    again = _grab(chat.sessions[1], packet.pk)
    assert (first.outcome, again.outcome) == ("grabbed", "already")
    assert again.grab is not None
    assert first.grab is not None
    assert again.grab.pk == first.grab.pk
    assert Grab.objects.filter(packet=packet).count() == 1


def test_grab__equal_packet__gives_every_share_the_same_amount() -> None:
    chat = group_chat(4)
    packet = _send(chat, kind="equal", total_amount=900, shares=3)
    amounts = [_grab(session, packet.pk).grab.amount for session in chat.sessions[1:]]
    assert amounts == [300, 300, 300]


def test_grab__own_packet_in_a_1to1_chat__is_refused() -> None:
    chat = direct_chat()
    packet = _send(chat, total_amount=500)
    with pytest.raises(OwnPacket):
        _grab(chat.sender, packet.pk)
    assert _grab(chat.sessions[1], packet.pk).grab.amount == 500


def test_grab__by_someone_outside_the_conversation__is_not_found() -> None:
    chat = group_chat(3)
    packet = _send(chat, shares=2)
    stranger = login_session(make_user())
    with pytest.raises(PacketNotFound):
        _grab(stranger, packet.pk)


def test_grab__after_expiry__is_expired_and_takes_nothing() -> None:
    chat = group_chat(3)
    packet = _send(chat, shares=2)
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        result = _grab(chat.sessions[1], packet.pk)
    assert (result.outcome, result.grab) == ("expired", None)
    assert not Grab.objects.exists()


def test_grab__with_the_gate_lost_in_redis__rebuilds_it_from_the_database() -> None:
    # given: one share taken, then Redis forgets the packet's gate
    chat = group_chat(4)
    packet = _send(chat, total_amount=600, shares=2)
    _grab(chat.sessions[1], packet.pk)
    gate_drop(packet)
    # when: the same member again, then two others
    again = _grab(chat.sessions[1], packet.pk)
    second = _grab(chat.sessions[2], packet.pk)
    third = _grab(chat.sessions[3], packet.pk)
    # then
    assert (again.outcome, second.outcome, third.outcome) == ("already", "grabbed", "finished")
    assert Grab.objects.filter(packet=packet).count() == 2


def test_grab__writes_the_bubble_state_to_the_grabber_and_the_sender() -> None:
    chat = group_chat(4)
    packet = _send(chat, total_amount=1000, shares=3)
    grab = _grab(chat.sessions[1], packet.pk).grab
    mine = _updates(chat.sessions[1].user.pk)[-1]
    assert mine == {
        "packet_id": packet.pk, "state": "open", "opened": True, "amount": grab.amount,
        "credit": "arriving", "opened_count": 1, "shares": 3,
    }  # fmt: skip
    senders = _updates(chat.sender.user.pk)[-1]
    assert senders["opened_by"] == {"user": chat.sessions[1].user.pk, "amount": grab.amount}
    assert senders["opened"] is False
    # a member who did not grab hears nothing until the packet is all taken
    assert _updates(chat.sessions[3].user.pk) == []


def test_grab__the_last_share__tells_every_member_it_is_all_taken() -> None:
    chat = group_chat(4)
    packet = _send(chat, total_amount=1000, shares=2)
    _grab(chat.sessions[1], packet.pk)
    _grab(chat.sessions[2], packet.pk)
    for session in chat.sessions:
        last = _updates(session.user.pk)[-1]
        assert (last["state"], last["opened_count"]) == ("finished", 2)
    assert _updates(chat.sessions[3].user.pk)[-1]["opened"] is False
    assert _updates(chat.sessions[2].user.pk)[-1]["opened"] is True


def test_credit__pays_the_grab_from_escrow_into_the_wallet_exactly_once() -> None:
    chat = group_chat(3)
    packet = _send(chat, total_amount=800, shares=2)
    grab = _grab(chat.sessions[1], packet.pk).grab
    # when: credited, and the task retried twice
    outcomes = [grab_credit(grab_id=grab.pk) for _ in range(3)]
    # then
    assert outcomes == [True, False, False]
    grab.refresh_from_db()
    assert grab.credit_state == CreditState.CREDITED
    wallet = LedgerAccount.objects.get(kind="wallet", user_id=chat.sessions[1].user.pk)
    assert wallet.balance == grab.amount
    assert ledger_balance(account_id=packet.escrow_id) == 800 - grab.amount
    assert LedgerTransaction.objects.filter(kind="packet_grab").count() == 1
    assert _updates(chat.sessions[1].user.pk)[-1]["credit"] == "credited"


def test_details__show_who_got_how_much_and_the_luckiest_once_finished() -> None:
    chat = group_chat(4)
    packet = _send(chat, total_amount=1000, shares=3)
    for session in chat.sessions[1:]:
        _grab(session, packet.pk)
    viewer = chat.sessions[2]
    detail = packet_detail(ticket=viewer.ticket, user_id=viewer.user.pk, packet_id=packet.pk)
    assert [line.user_id for line in detail.grabs] == [s.user.pk for s in chat.sessions[1:]]
    assert sum(line.amount for line in detail.grabs) == 1000
    best = max(detail.grabs, key=lambda line: line.amount)
    assert detail.luckiest == best.user_id
    assert detail.mine is not None
    assert detail.mine.user_id == viewer.user.pk
    assert detail.state == "finished"


def test_grab__after_the_sender_took_a_share__their_updates_keep_saying_so() -> None:
    chat = group_chat(4)
    packet = _send(chat, total_amount=1000, shares=3)
    own = _grab(chat.sender, packet.pk).grab
    _grab(chat.sessions[1], packet.pk)
    latest = _updates(chat.sender.user.pk)[-1]
    assert own is not None
    assert (latest["opened"], latest["amount"], latest["opened_count"]) == (True, own.amount, 2)


def test_grab__by_a_member_who_joined_after_it_was_sent__is_not_found() -> None:
    # As messaging hides messages from before one joined, so is their packet.
    from messaging.services.conversations import group_invite
    from tests.factories import make_friends

    chat = group_chat(3)
    packet = _send(chat, shares=2)
    newcomer = make_user()
    make_friends(chat.sender.user, newcomer)
    group_invite(ticket=chat.sender.ticket, user_id=chat.sender.user.pk,
                 conversation_id=chat.conversation, member_ids=[newcomer.pk])  # fmt: skip
    with pytest.raises(PacketNotFound):
        _grab(login_session(newcomer), packet.pk)
    assert _grab(chat.sessions[1], packet.pk).outcome == "grabbed"
