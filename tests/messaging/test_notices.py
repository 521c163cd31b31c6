"""System accounts' messages (the monitoring account writing alerts to operators): no
friendship needed, idempotent by client_msg_id, and a reply is refused with a clear
`system_account` error rather than `not_friends`."""

from __future__ import annotations

import pytest
from django.conf import settings

from accounts.services.contacts import friend_delete
from accounts.services.system import system_account_ensure, system_account_ticket
from messaging.exceptions import NotAllowed, NotFriends, SystemAccountReplies
from messaging.selectors import sync_read
from messaging.services.conversations import direct_open
from messaging.services.notices import system_message_send
from messaging.services.sending import message_send
from messaging.types import OutgoingContent, SendAck
from tests.factories import Session, login_session, login_ticket, make_friends, make_user

pytestmark = pytest.mark.django_db


def alert_to(operator_id: int, text: str, msg_id: str = "alert-1") -> SendAck:
    system = system_account_ensure(
        wechat_id=settings.MONITORING_SYSTEM_WECHAT_ID, nickname="Monitoring"
    )
    with system_account_ticket(user=system) as ticket:
        return system_message_send(
            ticket=ticket, user_id=system.pk, recipient_id=operator_id, text=text,
            client_msg_id=msg_id,
        )  # fmt: skip


def texts_of(session: Session) -> list[str]:
    page = sync_read(ticket=session.ticket, user_id=session.user.pk, since=0, limit=100)
    return [e["message"]["body"]["text"] for e in page.entries if e["message"] is not None]


def reply(session: Session, conversation_id: int, text: str) -> SendAck:
    return message_send(
        ticket=session.ticket, user_id=session.user.pk, conversation_id=conversation_id,
        client_msg_id=f"reply-{len(text)}", content=OutgoingContent(kind="text", text=text),
    )  # fmt: skip


def test_system_message__to_someone_not_a_friend__arrives_once_even_when_retried() -> None:
    # given: an operator who has nobody in their contacts
    operator = login_session(make_user(nickname="Olga"))
    # when: the monitoring account writes, and the task retries the same notice
    first = alert_to(operator.user.pk, "[FIRING] errors")
    again = alert_to(operator.user.pk, "[FIRING] errors")
    # then: one message in the operator's log
    assert texts_of(operator) == ["[FIRING] errors"]
    assert (again.message_id, again.duplicate) == (first.message_id, True)


def test_system_message__from_an_ordinary_account__is_not_allowed() -> None:
    sender, recipient = make_user(), make_user()
    with pytest.raises(NotAllowed):
        system_message_send(
            ticket=login_ticket(sender), user_id=sender.pk, recipient_id=recipient.pk,
            text="hello", client_msg_id="x-1",
        )  # fmt: skip


def test_reply__to_the_monitoring_account__is_refused_as_a_system_account() -> None:
    # given: an alert in the operator's chat with the monitoring account
    operator = login_session(make_user(nickname="Olga"))
    chat = alert_to(operator.user.pk, "[FIRING] errors").conversation_id
    # when: the operator answers it
    with pytest.raises(SystemAccountReplies) as refused:
        reply(operator, chat, "on it")
    # then: a specific, readable refusal, and nothing was written
    assert (refused.value.code, refused.value.status) == ("system_account", 403)
    assert "system account" in refused.value.message
    assert texts_of(operator) == ["[FIRING] errors"]


def test_reply__to_an_ordinary_person_who_unfriended_you__is_still_not_friends() -> None:
    # given: a 1:1 chat whose other side is a person who removed you
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    a = login_session(alice)
    chat = direct_open(ticket=a.ticket, user_id=alice.pk, peer_id=bob.pk)
    friend_delete(ticket=login_ticket(bob), user_id=bob.pk, friend_id=alice.pk)
    # when / then: the ordinary refusal, not the system account's
    with pytest.raises(NotFriends):
        reply(a, chat.pk, "hi")
