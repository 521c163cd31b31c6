"""Sending a red packet: the wallet's money into the packet's escrow, the packet and
its `redpacket` message in one transaction; idempotent; clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from messaging.exceptions import ConversationNotFound
from messaging.models import Message
from messaging.selectors import conversation_list, sync_read
from redpackets.exceptions import ClientIdReused, PacketInvalid, RedPacketsDisabled
from redpackets.models import Packet
from redpackets.services.sending import packet_send
from tests.factories import login_session, make_feature, make_user
from tests.redpackets.conftest import direct_chat, group_chat, packet_request
from wallet.exceptions import InsufficientFunds
from wallet.models import LedgerAccount, TransactionKind
from wallet.selectors import ledger_balance

pytestmark = pytest.mark.usefixtures("balanced_now")


def _wallet(user_id: int) -> int:
    return LedgerAccount.objects.get(kind="wallet", user_id=user_id).balance


def test_send__in_a_group__moves_the_amount_into_escrow_and_posts_a_redpacket_message() -> None:
    # given
    chat = group_chat(4, balance=5000)
    owner = chat.sender
    # when
    sent = packet_send(
        ticket=owner.ticket, user_id=owner.user.pk,
        request=packet_request(chat, total_amount=1200, shares=3, greeting="恭喜发财"),
    )  # fmt: skip
    # then: the money left the wallet for the escrow, in one ledger transaction
    packet = sent.packet
    assert (_wallet(owner.user.pk), ledger_balance(account_id=packet.escrow_id)) == (3800, 1200)
    assert packet.escrow.kind == "escrow"
    # and every member sees the message with the packet in its body
    message = Message.objects.get(id=packet.message_id or 0)
    assert message.kind == "redpacket"
    assert message.body["packet_id"] == packet.pk
    assert (message.body["greeting"], message.body["kind"], message.body["shares"]) == (
        "恭喜发财", "lucky", 3,
    )  # fmt: skip
    member = chat.sessions[2]
    page = sync_read(ticket=member.ticket, user_id=member.user.pk, since=0, limit=50)
    kinds = [entry["message"]["kind"] for entry in page.entries if entry["message"]]
    assert kinds[-1] == "redpacket"


def test_send__retried_with_the_same_client_id__returns_the_first_packet_and_charges_once() -> None:
    chat = group_chat(3, balance=5000)
    owner = chat.sender
    request = packet_request(chat, client_id="retry-1", total_amount=500, shares=2)
    first = packet_send(ticket=owner.ticket, user_id=owner.user.pk, request=request)
    again = packet_send(ticket=owner.ticket, user_id=owner.user.pk, request=request)
    assert (again.packet.pk, again.duplicate, first.duplicate) == (first.packet.pk, True, False)
    assert _wallet(owner.user.pk) == 4500
    assert Packet.objects.filter(sender=owner.user).count() == 1


def test_send__client_id_reused_for_another_packet__is_refused() -> None:
    chat = group_chat(3, balance=5000)
    owner = chat.sender
    packet_send(
        ticket=owner.ticket,
        user_id=owner.user.pk,
        request=packet_request(chat, client_id="same", total_amount=500, shares=2),
    )
    with pytest.raises(ClientIdReused):
        packet_send(
            ticket=owner.ticket,
            user_id=owner.user.pk,
            request=packet_request(chat, client_id="same", total_amount=600, shares=2),
        )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"total_amount": 20_001}, "total_amount"),  # above 200 CNY
        ({"shares": 101}, "shares"),
        ({"shares": 5}, "shares"),  # more shares than the group's 4 members
        ({"total_amount": 3, "shares": 4}, "total_amount"),  # under 1 fen a share
        ({"kind": "equal", "total_amount": 1000, "shares": 3}, "total_amount"),
        ({"kind": "huge"}, "kind"),
        ({"greeting": "x" * 26}, "greeting"),
        ({"client_id": "has space"}, "client_id"),
    ],
)
def test_send__outside_the_limits__is_refused_with_the_field_and_nothing_moves(
    fields: dict[str, Any], field: str
) -> None:
    chat = group_chat(4, balance=50_000)
    owner = chat.sender
    request = packet_request(chat, shares=fields.pop("shares", 2), **fields)
    with pytest.raises(PacketInvalid) as refused:
        packet_send(ticket=owner.ticket, user_id=owner.user.pk, request=request)
    assert refused.value.details["field"] == field
    assert refused.value.code == "redpacket_invalid"
    assert _wallet(owner.user.pk) == 50_000
    assert not Packet.objects.exists()


def test_send__in_a_1to1_chat__has_exactly_one_share() -> None:
    chat = direct_chat()
    with pytest.raises(PacketInvalid) as refused:
        packet_send(
            ticket=chat.sender.ticket,
            user_id=chat.sender.user.pk,
            request=packet_request(chat, shares=2),
        )
    assert refused.value.details == {"field": "shares", "limit": 1}


def test_send__more_than_the_wallet_holds__is_refused_and_leaves_no_packet_or_message() -> None:
    chat = group_chat(3, balance=300)
    owner = chat.sender
    before = Message.objects.filter(conversation_id=chat.conversation).count()
    with pytest.raises(InsufficientFunds):
        packet_send(
            ticket=owner.ticket,
            user_id=owner.user.pk,
            request=packet_request(chat, total_amount=301, shares=2),
        )
    assert not Packet.objects.exists()
    assert Message.objects.filter(conversation_id=chat.conversation).count() == before
    assert _wallet(owner.user.pk) == 300


def test_send__to_a_conversation_one_is_not_in__is_not_found() -> None:
    chat = group_chat(3)
    stranger = login_session(make_user())
    with pytest.raises(ConversationNotFound):
        packet_send(
            ticket=stranger.ticket, user_id=stranger.user.pk, request=packet_request(chat, shares=2)
        )


def test_send__with_the_feature_killed__is_refused_redpackets_disabled() -> None:
    # given: the gray-release feature exists, killed (the kill switch)
    make_feature("redpackets", killed=True, percentage_bp=10_000)
    chat = group_chat(3, balance=5000)
    with pytest.raises(RedPacketsDisabled) as refused:
        packet_send(
            ticket=chat.sender.ticket,
            user_id=chat.sender.user.pk,
            request=packet_request(chat, shares=2),
        )
    assert (refused.value.code, refused.value.status) == ("redpackets_disabled", 403)
    assert _wallet(chat.sender.user.pk) == 5000


def test_send__rolled_out_to_this_user__goes_out() -> None:
    chat = group_chat(3, balance=5000)
    make_feature("redpackets", allow=(str(chat.sender.user.pk),))
    sent = packet_send(
        ticket=chat.sender.ticket,
        user_id=chat.sender.user.pk,
        request=packet_request(chat, shares=2),
    )
    assert sent.packet.pk


@pytest.mark.parametrize(
    ("cover", "surname", "expected", "fallback"),
    [
        ("spring", None, {"id": "spring", "title": "Spring Festival", "surname": None}, False),
        ("surname", "王", {"id": "surname", "title": "王氏红包", "surname": "王"}, False),
        ("no-such-cover", None, {"id": "default", "title": "Red packet", "surname": None}, True),
        ("surname", "12", {"id": "default", "title": "Red packet", "surname": None}, True),
    ],
)
def test_send__with_a_cover__carries_it_or_falls_back_to_the_default(
    cover: str, surname: str | None, expected: dict[str, Any], fallback: bool
) -> None:
    chat = group_chat(3, balance=5000)
    sent = packet_send(
        ticket=chat.sender.ticket,
        user_id=chat.sender.user.pk,
        request=packet_request(chat, shares=2, cover=cover, surname=surname),
    )
    assert (sent.packet.cover, sent.cover_fallback) == (expected, fallback)
    assert Message.objects.get(id=sent.packet.message_id or 0).body["cover"] == expected


def test_send__when_the_cover_catalogue_cannot_be_read__goes_out_with_the_default(
    settings: Any,
) -> None:
    settings.REDPACKETS_COVERS = "not a catalogue"
    chat = group_chat(3, balance=5000)
    sent = packet_send(
        ticket=chat.sender.ticket,
        user_id=chat.sender.user.pk,
        request=packet_request(chat, shares=2, cover="spring"),
    )
    assert (sent.packet.cover["id"], sent.cover_fallback) == ("default", True)


def test_old_client__gets_the_packet_as_an_adapted_text() -> None:
    chat = group_chat(3, balance=5000)
    packet_send(
        ticket=chat.sender.ticket,
        user_id=chat.sender.user.pk,
        request=packet_request(chat, shares=2, greeting="Best luck"),
    )
    member = chat.sessions[1]
    page = sync_read(
        ticket=member.ticket, user_id=member.user.pk, since=0, limit=50, client_version="2.5.0"
    )
    last = [entry["message"] for entry in page.entries if entry["message"]][-1]
    assert last["kind"] == "text"
    assert last["adapted_from"] == "redpacket"
    assert last["body"]["text"] == "[Red packet] Best luck \u2014 open it in the latest version"


def test_send__records_a_packet_send_ledger_transaction_with_the_packet() -> None:
    chat = group_chat(3, balance=5000)
    sent = packet_send(
        ticket=chat.sender.ticket,
        user_id=chat.sender.user.pk,
        request=packet_request(chat, shares=2),
    )
    from wallet.models import LedgerTransaction

    recorded = LedgerTransaction.objects.get(idempotency_key=f"redpacket:{sent.packet.pk}:send")
    assert recorded.kind == TransactionKind.PACKET_SEND
    assert recorded.metadata["packet"] == sent.packet.pk


def test_send__counts_as_unread_for_the_other_members_not_the_sender() -> None:
    # given
    chat = group_chat(3, balance=5000)
    owner, member = chat.sender, chat.sessions[1]
    # when
    packet_send(
        ticket=owner.ticket, user_id=owner.user.pk,
        request=packet_request(chat, total_amount=300, shares=2),
    )  # fmt: skip
    # then: red packets declare counts_unread in messaging's kinds registry
    assert (_unread(member, chat), _unread(owner, chat)) == (1, 0)


def _unread(session: Any, chat: Any) -> int:
    listed = conversation_list(ticket=session.ticket, user_id=session.user.pk)
    return next(int(m.unread) for m in listed if m.conversation_id == chat.conversation)  # type: ignore[attr-defined]
