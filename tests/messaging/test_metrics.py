"""Business metrics declared beside the messaging code: messages sent (once per
client_msg_id, after commit), deliveries and fan-out sizes, sync entries written."""

from __future__ import annotations

import pytest

from messaging.services.conversations import group_create
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from tests.factories import befriend_all, login_session, make_user
from wechat_core.metrics import family, sample_value

pytestmark = pytest.mark.django_db


def fanout_observations(at_most: float) -> float:
    """Inline deliveries of this process whose fan-out was at most `at_most`."""
    declared = family("messaging_fanout_recipients")
    assert declared is not None
    return sum(
        value.value
        for value in declared.snapshot()
        if value.part == "bucket"
        and value.le is not None
        and value.le <= at_most
        and dict(value.labels)["path"] == "inline"
    )


def test_group_message__sent_once_and_retried__counted_once_delivered_to_every_member(
    django_capture_on_commit_callbacks,
) -> None:
    # given: a group of three
    owner, *others = (make_user() for _ in range(3))
    befriend_all(owner, others)
    session = login_session(owner)
    group = group_create(
        ticket=session.ticket, user_id=owner.pk, name="Three", member_ids=[u.pk for u in others]
    )
    sent = sample_value("messaging_messages_sent_total", kind="text", conversation="group")
    delivered = sample_value("messaging_messages_delivered_total", path="inline")
    entries = sample_value("messaging_sync_entries_written_total", kind="message")
    up_to_two, up_to_three = fanout_observations(2), fanout_observations(3)
    # when: a message, and its retry with the same client_msg_id
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            message_send(
                ticket=session.ticket, user_id=owner.pk, conversation_id=group.pk,
                client_msg_id="metrics-1", content=OutgoingContent(kind="text", text="hi"),
            )  # fmt: skip
    # then: one message sent, three deliveries in one fan-out of 3, three log entries
    assert (
        sample_value("messaging_messages_sent_total", kind="text", conversation="group") - sent == 1
    )
    assert sample_value("messaging_messages_delivered_total", path="inline") - delivered == 3
    assert sample_value("messaging_sync_entries_written_total", kind="message") - entries == 3
    assert (fanout_observations(2) - up_to_two, fanout_observations(3) - up_to_three) == (0, 1)


def test_message_sent__before_its_commit__is_not_counted_yet(
    django_capture_on_commit_callbacks,
) -> None:
    # given: a group, and a send whose transaction never commits
    owner, other = make_user(), make_user()
    befriend_all(owner, [other])
    session = login_session(owner)
    group = group_create(ticket=session.ticket, user_id=owner.pk, name="Two", member_ids=[other.pk])
    sent = sample_value("messaging_messages_sent_total", kind="text", conversation="group")
    # when: the callbacks registered by the send are dropped (as a rollback drops them)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message_send(
            ticket=session.ticket, user_id=owner.pk, conversation_id=group.pk,
            client_msg_id="metrics-2", content=OutgoingContent(kind="text", text="hi"),
        )  # fmt: skip
    # then: nothing counted until a commit runs them
    assert sample_value("messaging_messages_sent_total", kind="text", conversation="group") == sent
    for callback in callbacks:
        callback()
    assert (
        sample_value("messaging_messages_sent_total", kind="text", conversation="group") == sent + 1
    )
