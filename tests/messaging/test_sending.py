"""Sending: 1:1 between friends, idempotency, blocking, content rules, spam filter,
throttling, recall and read positions."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from accounts.exceptions import BlockedByUser, YouBlockedUser
from accounts.services.contacts import friend_delete, user_block
from messaging.exceptions import (
    ClientMessageIdReused,
    ConversationNotFound,
    InvalidContent,
    MessageRejected,
    NotAllowed,
    NotFriends,
    RecallWindowPassed,
    Throttled,
)
from messaging.models import Message
from messaging.selectors import sync_read
from messaging.services.conversations import direct_open, group_create
from messaging.services.sending import conversation_read, message_recall, message_send
from messaging.services.spam import SpamCandidate, runs_inline
from messaging.types import OutgoingContent
from tests.factories import Session, login_session, make_friends, make_user
from wechat_core.metrics import sample_value
from wechat_core.sync.models import SyncEntry

pytestmark = pytest.mark.django_db


def text(value: str, **extra: Any) -> OutgoingContent:
    return OutgoingContent(kind="text", text=value, **extra)


@pytest.fixture
def pair() -> tuple[Session, Session, int]:
    """Alice and Bob, friends, with their 1:1 chat."""
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    a, b = login_session(alice), login_session(bob)
    chat = direct_open(ticket=a.ticket, user_id=alice.pk, peer_id=bob.pk)
    return a, b, chat.pk


def send(session: Session, conversation: int, content: OutgoingContent, msg_id: str = "") -> Any:
    return message_send(
        ticket=session.ticket,
        user_id=session.user.pk,
        conversation_id=conversation,
        client_msg_id=msg_id or f"m-{time.monotonic_ns()}",
        content=content,
    )


def messages_of(session: Session, since: int = 0) -> list[dict[str, Any]]:
    page = sync_read(ticket=session.ticket, user_id=session.user.pk, since=since, limit=1000)
    return [dict(e["message"]) for e in page.entries if e["message"] is not None]


def test_send__to_a_friend__lands_in_both_logs_with_conversation_seqs(pair: Any) -> None:
    a, b, chat = pair
    first = send(a, chat, text("one"))
    second = send(b, chat, text("two"))
    assert (first.seq, second.seq) == (1, 2)
    for session in (a, b):
        assert [m["body"]["text"] for m in messages_of(session)] == ["one", "two"]


def test_send__retry_with_same_client_msg_id__returns_the_original_ack(pair: Any) -> None:
    a, b, chat = pair
    first = send(a, chat, text("once"), msg_id="retry-1")
    again = send(a, chat, text("once"), msg_id="retry-1")
    assert (again.message_id, again.seq, again.duplicate) == (first.message_id, first.seq, True)
    assert Message.objects.filter(client_msg_id="retry-1").count() == 1
    assert len(messages_of(b)) == 1


def test_send__retry_after_24_hours__still_returns_the_original(pair: Any) -> None:
    a, _, chat = pair
    first = send(a, chat, text("once"), msg_id="late-retry")
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        again = send(a, chat, text("once"), msg_id="late-retry")
    assert (again.message_id, again.duplicate) == (first.message_id, True)


def test_send__client_msg_id_reused_for_another_conversation__is_refused(pair: Any) -> None:
    a, _, chat = pair
    carol = make_user()
    make_friends(a.user, carol)
    other = direct_open(ticket=a.ticket, user_id=a.user.pk, peer_id=carol.pk)
    send(a, chat, text("x"), msg_id="same-id")
    with pytest.raises(ClientMessageIdReused):
        send(a, other.pk, text("y"), msg_id="same-id")


def test_send__when_the_peer_blocked_me__is_refused_with_blocked(pair: Any) -> None:
    a, b, chat = pair
    user_block(ticket=b.ticket, user_id=b.user.pk, target_id=a.user.pk)
    with pytest.raises(BlockedByUser):
        send(a, chat, text("let me in"))
    with pytest.raises(YouBlockedUser):
        send(b, chat, text("nope"))
    assert not Message.objects.exists()


def test_send__after_the_peer_deleted_me__is_refused_with_not_friends(pair: Any) -> None:
    a, b, chat = pair
    friend_delete(ticket=b.ticket, user_id=b.user.pk, friend_id=a.user.pk)
    with pytest.raises(NotFriends):
        send(a, chat, text("hello?"))


def test_direct_open__with_a_non_friend__is_refused() -> None:
    alice, stranger = make_user(), make_user()
    session = login_session(alice)
    with pytest.raises(NotFriends):
        direct_open(ticket=session.ticket, user_id=alice.pk, peer_id=stranger.pk)


def test_send__to_a_conversation_i_am_not_in__is_not_found(pair: Any) -> None:
    _, _, chat = pair
    outsider = login_session(make_user())
    with pytest.raises(ConversationNotFound):
        send(outsider, chat, text("hi"))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (OutgoingContent(kind="text", text=""), "empty"),
        (OutgoingContent(kind="text", text="   "), "blank"),
        (OutgoingContent(kind="image"), "image without attachment"),
        (OutgoingContent(kind="sticker", text="x"), "unknown kind"),
        (OutgoingContent(kind="text", text="x", reply_to=10**12), "reply to nothing"),
    ],
)
def test_send__invalid_content__is_refused(pair: Any, content: OutgoingContent, why: str) -> None:
    a, _, chat = pair
    with pytest.raises(InvalidContent):
        send(a, chat, content)


def test_send__text_over_the_limit__is_refused(pair: Any, settings: Any) -> None:
    settings.MESSAGING_TEXT_MAX_CHARS = 10
    a, _, chat = pair
    send(a, chat, text("x" * 10))
    with pytest.raises(InvalidContent):
        send(a, chat, text("x" * 11))


@pytest.mark.parametrize("bad_id", ["", "x" * 65, "has space", "é"])
def test_send__malformed_client_msg_id__is_refused(pair: Any, bad_id: str) -> None:
    a, _, chat = pair
    with pytest.raises(InvalidContent):
        message_send(
            ticket=a.ticket, user_id=a.user.pk, conversation_id=chat, client_msg_id=bad_id,
            content=text("x"),
        )  # fmt: skip


def test_send__quoting_a_message__records_the_reply(pair: Any) -> None:
    a, b, chat = pair
    original = send(a, chat, text("question?"))
    send(b, chat, text("answer", reply_to=original.message_id))
    assert messages_of(a)[-1]["body"]["reply_to"] == original.message_id


def test_send__more_than_the_rate_limit__is_throttled_with_tier_and_retry_after(
    pair: Any, settings: Any
) -> None:
    settings.MESSAGING_SENDS_PER_MINUTE = 3
    a, _, chat = pair
    for n in range(3):
        send(a, chat, text(f"{n}"))
    with pytest.raises(Throttled) as throttled:
        send(a, chat, text("too many"))
    assert throttled.value.tier == 1
    assert 0 < throttled.value.retry_after <= 60


# --- The spam filter: flexible availability --------------------------------------------


def raising_filter(candidate: SpamCandidate) -> bool:
    raise RuntimeError("the spam service is down")


def slow_filter(candidate: SpamCandidate) -> bool:
    time.sleep(1.0)
    return True


@runs_inline
def raising_inline_filter(candidate: SpamCandidate) -> bool:
    raise ValueError("a broken rule")


@runs_inline
def slow_inline_filter(candidate: SpamCandidate) -> bool:
    time.sleep(0.1)
    return "slow spam" in candidate.text


@pytest.mark.parametrize("spam_filter", ["raising_filter", "raising_inline_filter"])
def test_spam_filter__that_raises__is_skipped_the_message_delivered_and_the_skip_counted(
    pair: Any, settings: Any, spam_filter: str
) -> None:
    # in the pool or inline (@runs_inline), a broken filter never stops a message
    settings.MESSAGING_SPAM_FILTER = f"tests.messaging.test_sending.{spam_filter}"
    a, b, chat = pair
    before = sample_value("messaging_spam_filter_skips_total", reason="error")
    send(a, chat, text("delivered anyway"))
    assert [m["body"]["text"] for m in messages_of(b)] == ["delivered anyway"]
    assert sample_value("messaging_spam_filter_skips_total", reason="error") == before + 1


def test_spam_filter__that_overruns_its_budget__is_skipped_and_counted(
    pair: Any, settings: Any
) -> None:
    # the filter would call it spam, but too late
    settings.MESSAGING_SPAM_FILTER = "tests.messaging.test_sending.slow_filter"
    settings.MESSAGING_SPAM_FILTER_BUDGET_MS = 50
    a, b, chat = pair
    before = sample_value("messaging_spam_filter_skips_total", reason="timeout")
    started = time.monotonic()
    send(a, chat, text("on time"))
    assert time.monotonic() - started < 0.9  # the send did not wait for the filter
    assert [m["body"]["text"] for m in messages_of(b)] == ["on time"]
    assert sample_value("messaging_spam_filter_skips_total", reason="timeout") == before + 1


def test_spam_filter__inline_one_that_overruns__still_decides_and_the_overrun_is_logged(
    pair: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # An inline filter cannot be cut short: its verdict stands, and the log says
    # it belongs in the pool.
    settings.MESSAGING_SPAM_FILTER = "tests.messaging.test_sending.slow_inline_filter"
    settings.MESSAGING_SPAM_FILTER_BUDGET_MS = 20
    a, b, chat = pair
    with pytest.raises(MessageRejected):
        send(a, chat, text("this is slow spam"))
    assert messages_of(b) == []
    assert "should not be marked runs_inline" in caplog.text


def test_spam_filter__that_answers_spam__rejects_the_message(pair: Any, settings: Any) -> None:
    settings.MESSAGING_SPAM_KEYWORDS = ["cheap watches"]
    a, b, chat = pair
    with pytest.raises(MessageRejected):
        send(a, chat, text("Buy CHEAP WATCHES now"))
    assert messages_of(b) == []


# --- Recall ---------------------------------------------------------------------------------


def test_recall__within_two_minutes__every_member_gets_a_recall_entry_and_sees_it_recalled(
    pair: Any,
) -> None:
    a, b, chat = pair
    sent = send(a, chat, text("oops"))
    with time_machine.travel(timezone.now() + timedelta(seconds=110)):
        notice = message_recall(ticket=a.ticket, user_id=a.user.pk, message_id=sent.message_id)
    for session in (a, b):
        original, recall = messages_of(session)
        assert (original["recalled"], original["body"]) == (True, {})
        assert (recall["kind"], recall["body"]) == ("recall", {"message_id": sent.message_id})
    assert notice.seq == 2


def test_recall__after_two_minutes__is_refused(pair: Any) -> None:
    a, _, chat = pair
    sent = send(a, chat, text("too late"))
    with (
        time_machine.travel(timezone.now() + timedelta(seconds=121)),
        pytest.raises(RecallWindowPassed),
    ):
        message_recall(ticket=a.ticket, user_id=a.user.pk, message_id=sent.message_id)


def test_recall__of_someone_elses_message__is_refused(pair: Any) -> None:
    a, b, chat = pair
    sent = send(a, chat, text("mine"))
    with pytest.raises(NotAllowed):
        message_recall(ticket=b.ticket, user_id=b.user.pk, message_id=sent.message_id)


def test_recall__twice__returns_the_same_notice(pair: Any) -> None:
    a, _, chat = pair
    sent = send(a, chat, text("x"))
    first = message_recall(ticket=a.ticket, user_id=a.user.pk, message_id=sent.message_id)
    second = message_recall(ticket=a.ticket, user_id=a.user.pk, message_id=sent.message_id)
    assert (second.message_id, second.duplicate) == (first.message_id, True)


# --- Read positions and multi-device -----------------------------------------------------------


def test_read__moves_forward_only_and_tells_my_other_devices(pair: Any) -> None:
    a, b, chat = pair
    for n in range(3):
        send(a, chat, text(f"{n}"))
    phone, laptop = b, login_session(b.user)
    assert (
        conversation_read(ticket=phone.ticket, user_id=b.user.pk, conversation_id=chat, seq=2) == 2
    )
    assert (
        conversation_read(ticket=phone.ticket, user_id=b.user.pk, conversation_id=chat, seq=1) == 2
    )
    reads = [
        e for e in sync_read(ticket=laptop.ticket, user_id=b.user.pk, since=0, limit=100).entries
        if e["kind"] == "read"
    ]  # fmt: skip
    assert [e["payload"] for e in reads] == [{"conversation": chat, "read_seq": 2}]


def test_read__beyond_the_last_message__stops_at_the_last(pair: Any) -> None:
    a, b, chat = pair
    send(a, chat, text("only"))
    assert conversation_read(ticket=b.ticket, user_id=b.user.pk, conversation_id=chat, seq=99) == 1


def test_multi_device__what_i_send_from_one_device_reaches_my_others(pair: Any) -> None:
    a, _, chat = pair
    laptop = login_session(a.user)
    send(a, chat, text("from my phone"))
    assert [m["body"]["text"] for m in messages_of(laptop)] == ["from my phone"]


def test_sync__pages_with_keys__never_skip_or_repeat(pair: Any) -> None:
    a, b, chat = pair
    for n in range(25):
        send(a, chat, text(f"{n}"))
    seen: list[int] = []
    key, more = 0, True
    while more:
        page = sync_read(ticket=b.ticket, user_id=b.user.pk, since=key, limit=7)
        seen += [e["seq"] for e in page.entries]
        key, more = page.key, page.more
    # every entry of the log (friendship notices, then 25 messages), once, in order
    total = SyncEntry.objects.filter(user=b.user).count()
    assert total == 25 + 2  # and the friend-request and friend-added notices
    assert seen == list(range(1, total + 1))


def test_group__mention_all__only_by_owner_or_admins() -> None:
    owner, member = make_user(), make_user()
    make_friends(owner, member)
    o, m = login_session(owner), login_session(member)
    group = group_create(ticket=o.ticket, user_id=owner.pk, name="Team", member_ids=[member.pk])
    send(o, group.pk, text("@all meeting", mention_all=True))
    with pytest.raises(NotAllowed):
        send(m, group.pk, text("@all party", mention_all=True))
    send(m, group.pk, text("@owner hi", mentions=(owner.pk,)))
    last = messages_of(o)[-1]
    assert last["body"]["mentions"] == [owner.pk]


def test_group__mentioning_a_non_member__is_refused() -> None:
    owner, member, outsider = make_user(), make_user(), make_user()
    make_friends(owner, member)
    o = login_session(owner)
    group = group_create(ticket=o.ticket, user_id=owner.pk, name="Team", member_ids=[member.pk])
    with pytest.raises(InvalidContent):
        send(o, group.pk, text("hey", mentions=(outsider.pk,)))


def test_sync__own_messages_carry_their_client_msg_id_others_do_not(pair: Any) -> None:
    a, b, chat = pair
    send(a, chat, text("mine"), msg_id="outbox-7")
    laptop = login_session(a.user)
    assert messages_of(laptop)[0]["client_msg_id"] == "outbox-7"
    assert messages_of(b)[0]["client_msg_id"] is None
