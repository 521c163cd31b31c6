"""Refunds: 24 h after sending, the unopened shares go back to the sender (or to the
budget a system sender named as the refund account), once, and the chat is told;
grabs made before keep their amounts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from messaging.models import Message
from messaging.selectors import sync_read
from redpackets.exceptions import PacketInvalid
from redpackets.services.crediting import grab_credit
from redpackets.services.grabbing import packet_grab
from redpackets.services.reconcile import redpackets_reconcile
from redpackets.services.refunds import packets_refund_expired
from redpackets.services.sending import packet_send
from redpackets.tasks import refund_expired
from tests.redpackets.conftest import group_chat, packet_request
from wallet.models import LedgerAccount, LedgerTransaction
from wallet.selectors import ledger_balance
from wallet.services.ledger import budget_account_open, escrow_account_open
from wechat_core.sync.models import SyncEntry

pytestmark = pytest.mark.usefixtures("balanced_now")
AFTER_A_DAY = timedelta(days=1, seconds=1)


def _wallet(user_id: int) -> int:
    return LedgerAccount.objects.get(kind="wallet", user_id=user_id).balance


def test_refund__after_24_hours__returns_the_unopened_shares_to_the_sender_once() -> None:
    # given: 1000 fen in 4 shares, one opened and credited
    chat = group_chat(5, balance=1000)
    owner = chat.sender
    packet = packet_send(
        ticket=owner.ticket,
        user_id=owner.user.pk,
        request=packet_request(chat, total_amount=1000, shares=4),
    ).packet
    grab = packet_grab(
        ticket=chat.sessions[1].ticket, user_id=chat.sessions[1].user.pk, packet_id=packet.pk
    ).grab
    assert grab is not None
    grab_credit(grab_id=grab.pk)
    # when: a day passes, and the beat task runs twice
    with time_machine.travel(timezone.now() + AFTER_A_DAY):
        refunded = [refund_expired(), refund_expired()]
    # then
    assert refunded == [1, 0]
    packet.refresh_from_db()
    assert (packet.state, packet.refunded_amount, packet.remaining_amount) == (
        "expired", 1000 - grab.amount, 0,
    )  # fmt: skip
    assert _wallet(owner.user.pk) == 1000 - grab.amount
    assert ledger_balance(account_id=packet.escrow_id) == 0
    assert LedgerTransaction.objects.filter(kind="packet_refund").count() == 1


def test_refund__before_24_hours__does_nothing() -> None:
    chat = group_chat(3, balance=1000)
    packet_send(
        ticket=chat.sender.ticket,
        user_id=chat.sender.user.pk,
        request=packet_request(chat, total_amount=1000, shares=2),
    )
    with time_machine.travel(timezone.now() + timedelta(hours=23)):
        assert packets_refund_expired() == 0


def test_refund__tells_the_chat_and_marks_every_bubble_expired() -> None:
    chat = group_chat(3, balance=1000)
    owner = chat.sender
    packet = packet_send(
        ticket=owner.ticket,
        user_id=owner.user.pk,
        request=packet_request(chat, total_amount=700, shares=2),
    ).packet
    with time_machine.travel(timezone.now() + AFTER_A_DAY):
        packets_refund_expired()
    notice = Message.objects.filter(conversation_id=chat.conversation, kind="system").last()
    assert notice is not None
    assert notice.body == {
        "event": "redpacket_refunded", "packet_id": packet.pk, "message_id": packet.message_id,
        "user": owner.user.pk, "amount": 700, "unopened": 2, "refunded_to": "sender",
    }  # fmt: skip
    for session in chat.sessions:
        update = SyncEntry.objects.filter(user_id=session.user.pk, kind="message_update").last()
        assert update is not None
        assert update.payload is not None
        assert update.payload["redpacket"]["state"] == "expired"
    sender_update: Any = SyncEntry.objects.filter(
        user_id=owner.user.pk, kind="message_update"
    ).last()
    assert sender_update.payload["redpacket"]["refunded_amount"] == 700
    # an old client reads the notice as text
    page = sync_read(
        ticket=owner.ticket, user_id=owner.user.pk, since=0, limit=100, client_version="1.0.0"
    )
    texts = [e["message"]["body"].get("text", "") for e in page.entries if e["message"]]
    assert any("unopened share(s), 7.00 CNY" in text for text in texts)


def test_refund__to_a_refund_account__the_rest_goes_to_that_budget_not_the_sender() -> None:
    # given: 1000 fen in 4 shares whose refund account is a budget; one share grabbed
    chat = group_chat(5, balance=1000)
    owner = chat.sender
    budget = budget_account_open(reference="activity:refund-test")
    packet = packet_send(
        ticket=owner.ticket,
        user_id=owner.user.pk,
        request=packet_request(chat, total_amount=1000, shares=4, refund_account_id=budget.pk),
    ).packet
    grab = packet_grab(
        ticket=chat.sessions[1].ticket, user_id=chat.sessions[1].user.pk, packet_id=packet.pk
    ).grab
    assert grab is not None
    grab_credit(grab_id=grab.pk)
    # when: a day passes, and the beat task runs twice
    with time_machine.travel(timezone.now() + AFTER_A_DAY):
        refunded = [refund_expired(), refund_expired()]
    # then: the rest is in the budget, once; the sender's wallet stays spent
    assert refunded == [1, 0]
    rest = 1000 - grab.amount
    assert ledger_balance(account_id=budget.pk) == rest
    assert _wallet(owner.user.pk) == 0
    assert ledger_balance(account_id=packet.escrow_id) == 0
    assert LedgerTransaction.objects.filter(kind="packet_refund").count() == 1
    # and: the chat is told where it went (an old client too)
    notice = Message.objects.filter(conversation_id=chat.conversation, kind="system").last()
    assert notice is not None
    assert (notice.body["amount"], notice.body["refunded_to"]) == (rest, "budget")
    page = sync_read(
        ticket=owner.ticket, user_id=owner.user.pk, since=0, limit=100, client_version="1.0.0"
    )
    texts = [e["message"]["body"].get("text", "") for e in page.entries if e["message"]]
    assert any("went back to its activity's prize pool" in text for text in texts)
    # and: the packet and the whole ledger reconcile
    report = redpackets_reconcile()
    assert (report.unresolved, report.ledger_ok) == (0, True)


def test_send__a_refund_account_that_is_not_a_budget__refused() -> None:
    chat = group_chat(3, balance=1000)
    escrow = escrow_account_open(reference="redpacket:not-a-budget")
    with pytest.raises(PacketInvalid) as refused:
        packet_send(
            ticket=chat.sender.ticket,
            user_id=chat.sender.user.pk,
            request=packet_request(chat, total_amount=500, shares=2, refund_account_id=escrow.pk),
        )
    assert refused.value.details["field"] == "refund_account"
    assert _wallet(chat.sender.user.pk) == 1000
