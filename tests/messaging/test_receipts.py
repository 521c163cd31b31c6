"""Delivery receipts: the end-to-end delay of others' messages, in buckets 0-1 s, 1-2 s,
2-5 s, 5-10 s and > 10 s; own messages, strangers' conversations, catch-ups and
impossible reports do not count; the size of a receipt is limited."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from messaging.services.conversations import direct_open
from messaging.services.receipts import DELIVERY_DELAY, receipts_record
from messaging.services.sending import message_send
from messaging.types import OutgoingContent, SendAck
from tests.factories import Session, login_session, make_friends, make_user
from wechat_core.errors import InvalidInput

pytestmark = pytest.mark.django_db
_versions = itertools.count(41)


def delay_buckets(version: str) -> dict[float | None, float]:
    """This process's delay histogram for one client version, bucket → count."""
    return {
        value.le: value.value
        for value in DELIVERY_DELAY.snapshot()
        if value.part == "bucket" and dict(value.labels)["client_version"] == version
    }


@pytest.fixture
def chat() -> tuple[Session, Session, int, str]:
    """Alice writes to Bob, whose client version is this test's own (so his receipts
    are the only ones under that label)."""
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    minor = next(_versions)
    a, b = login_session(alice), login_session(bob, client_version=f"9.{minor}.0")
    conversation = direct_open(ticket=a.ticket, user_id=alice.pk, peer_id=bob.pk)
    return a, b, conversation.pk, f"9.{minor}"


def send(session: Session, conversation: int) -> SendAck:
    return message_send(
        ticket=session.ticket, user_id=session.user.pk, conversation_id=conversation,
        client_msg_id=f"m-{time.monotonic_ns()}", content=OutgoingContent(kind="text", text="hi"),
    )  # fmt: skip


def test_receipts__messages_shown_after_some_seconds__fall_in_their_delay_buckets(chat) -> None:
    a, b, conversation, version = chat
    # given: three messages from Alice
    sent = [send(a, conversation) for _ in range(3)]
    # when: 3.5 s later Bob reports one shown 3 s ago (0.5 s delay), one shown 500 ms
    # ago (3 s) and one just now (3.5 s)
    with time_machine.travel(timezone.now() + timedelta(seconds=3.5), tick=False):
        counted = receipts_record(
            ticket=b.ticket, user_id=b.user.pk,
            shown=[(sent[0].message_id, 3000), (sent[1].message_id, 500),
                   (sent[2].message_id, 0)],
        )  # fmt: skip
    # then: every one counts, in the 0-1 s bucket and twice in the 2-5 s one
    assert counted == 3
    assert delay_buckets(version) == {1.0: 1, 2.0: 0, 5.0: 2, 10.0: 0, None: 0}


def test_receipts__resent_by_a_device__count_once_but_each_device_counts(chat) -> None:
    a, b, conversation, version = chat
    message = send(a, conversation)
    phone = login_session(b.user, client_version=f"{version}.0")  # Bob's second device
    with time_machine.travel(timezone.now() + timedelta(seconds=0.5), tick=False):
        first = receipts_record(ticket=b.ticket, user_id=b.user.pk, shown=[(message.message_id, 0)])
        # the link dropped before the answer, and the client sends the receipt again
        again = receipts_record(ticket=b.ticket, user_id=b.user.pk, shown=[(message.message_id, 0)])
        other_device = receipts_record(
            ticket=phone.ticket, user_id=b.user.pk, shown=[(message.message_id, 0)]
        )
    assert (first, again, other_device) == (1, 0, 1)
    assert delay_buckets(version) == {1.0: 2, 2.0: 0, 5.0: 0, 10.0: 0, None: 0}


def test_receipts__own_strangers_old_and_impossible__are_not_counted(chat) -> None:
    a, b, conversation, version = chat
    # given: Bob's own message, a message in a chat Bob is not in, and Alice's message
    own = send(b, conversation)
    carol, dave = make_user(), make_user()
    make_friends(carol, dave)
    c = login_session(carol)
    elsewhere = send(c, direct_open(ticket=c.ticket, user_id=carol.pk, peer_id=dave.pk).pk)
    theirs = send(a, conversation)
    with time_machine.travel(timezone.now() + timedelta(seconds=2), tick=False):
        # when: Bob reports his own, the stranger's, and Alice's as shown before it was
        # sent, and then with a number far past any age limit
        counted = receipts_record(
            ticket=b.ticket, user_id=b.user.pk,
            shown=[(own.message_id, 0), (elsewhere.message_id, 0), (theirs.message_id, 60_000)],
        )  # fmt: skip
        huge = receipts_record(
            ticket=b.ticket, user_id=b.user.pk, shown=[(theirs.message_id, 2**62)]
        )
    # then: nothing counted as delay
    assert (counted, huge) == (0, 0)
    assert sum(delay_buckets(version).values()) == 0


def test_receipts__shown_long_after_sending__are_a_catch_up_not_a_delay(chat, settings) -> None:
    a, b, conversation, version = chat
    message = send(a, conversation)
    later = timedelta(seconds=settings.MONITORING_RECEIPT_MAX_AGE_SECONDS + 5)
    with time_machine.travel(timezone.now() + later, tick=False):
        counted = receipts_record(
            ticket=b.ticket, user_id=b.user.pk, shown=[(message.message_id, 0)]
        )
    assert counted == 0
    assert sum(delay_buckets(version).values()) == 0


def test_receipts__more_messages_than_the_limit__refused_and_nothing_counted(
    chat, settings
) -> None:
    a, b, conversation, version = chat
    settings.MONITORING_RECEIPT_MAX_MESSAGES = 2
    sent = [send(a, conversation) for _ in range(3)]
    with pytest.raises(InvalidInput) as refused:
        receipts_record(ticket=b.ticket, user_id=b.user.pk, shown=[(m.message_id, 0) for m in sent])
    assert refused.value.details == {"limit": 2}
    assert sum(delay_buckets(version).values()) == 0


def test_receipts_api__post__counts_and_bad_input_gets_a_json_400(chat) -> None:
    a, b, conversation, version = chat
    message = send(a, conversation)
    http = APIClient(headers=b.headers)
    # when: the HTTP twin of the receipt frame
    answer = http.post(
        "/api/messaging/receipts",
        {"messages": [{"id": message.message_id, "shown_ago_ms": 0}]},
        format="json",
    )
    bad = http.post("/api/messaging/receipts", {"messages": [{"id": "x"}]}, format="json")
    # then
    assert (answer.status_code, answer.json()) == (200, {"counted": 1})
    assert sum(delay_buckets(version).values()) == 1
    assert bad.status_code == 400
    assert set(bad.json()) == {"code", "message", "details"}
