"""Nobody learns that a conversation or message exists unless it is theirs to see:
every group endpoint, recall and the conversation endpoints answer "exists but
not yours" exactly as "does not exist" (issue 11, item 11)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from messaging.services.conversations import direct_open, group_create, group_leave
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from tests.factories import (
    befriend_all,
    login_session,
    make_follower,
    make_official_account,
    make_user,
)

MISSING = 10**12

# Every endpoint that takes a conversation id: (method, path, body).
CONVERSATION_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("patch", "/api/messaging/groups/{id}", {"name": "renamed"}),
    ("patch", "/api/messaging/groups/{id}", {"announcement": "hello"}),
    ("post", "/api/messaging/groups/{id}/members", {"user_ids": ["{friend}"]}),
    ("delete", "/api/messaging/groups/{id}/members/{member}", None),
    ("post", "/api/messaging/groups/{id}/leave", None),
    ("put", "/api/messaging/groups/{id}/admins/{member}", None),
    ("delete", "/api/messaging/groups/{id}/admins/{member}", None),
    ("get", "/api/messaging/conversations/{id}", None),
    ("get", "/api/messaging/conversations/{id}/messages", None),
    ("post", "/api/messaging/read", {"conversation": "{id}", "seq": 1}),
    ("post", "/api/messaging/send",
     {"conversation": "{id}", "client_msg_id": "probe", "content": {"text": "hi"}}),
]  # fmt: skip


def _send(session: Any, conversation_id: int, text: str) -> int:
    ack = message_send(
        ticket=session.ticket, user_id=session.user.pk, conversation_id=conversation_id,
        client_msg_id=uuid.uuid4().hex, content=OutgoingContent("text", text),
    )  # fmt: skip
    return ack.message_id


@pytest.fixture
def world() -> dict[str, Any]:
    """Mallory (the caller) with a friend of her own; others' group, 1:1 chat and
    official chat; a group Mallory left; a group she joined after a message."""
    owner, member, mallory, friend = (make_user() for _ in range(4))
    befriend_all(owner, [member, mallory])
    befriend_all(mallory, [friend])
    owner_session = login_session(owner)
    mallory_session = login_session(mallory)
    group = group_create(
        ticket=owner_session.ticket, user_id=owner.pk, name="Theirs", member_ids=[member.pk]
    )
    chat = direct_open(ticket=owner_session.ticket, user_id=owner.pk, peer_id=member.pk)
    account, _ = make_official_account(name="Someone's account")
    official = make_follower(member, account).conversation_id
    left = group_create(
        ticket=owner_session.ticket, user_id=owner.pk, name="Left", member_ids=[mallory.pk]
    )
    left_message = _send(owner_session, left.pk, "said while Mallory was in")
    group_leave(ticket=mallory_session.ticket, user_id=mallory.pk, conversation_id=left.pk)
    before = _send(owner_session, group.pk, "before anyone else joined")
    return {
        "mallory": mallory_session, "friend": friend.pk, "member": member.pk,
        "conversations": {"missing": MISSING, "their group": group.pk, "their 1:1 chat": chat.pk,
                          "their official chat": official, "a group she left": left.pk},
        "messages": {"missing": MISSING, "in their group": before,
                     "in their 1:1 chat": _send(owner_session, chat.pk, "private"),
                     "in a group she left": left_message},
        "late_group": group.pk, "owner": owner_session,
    }  # fmt: skip


def _fill(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return names[value[1:-1]]
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    return value


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), CONVERSATION_ENDPOINTS)
def test_conversation_endpoints__not_yours_or_missing__the_same_404(
    world: dict[str, Any], method: str, path: str, body: dict[str, Any] | None
) -> None:
    # given: Mallory, in none of the conversations
    client = APIClient(headers=world["mallory"].headers)
    answers = {}
    for case, conversation_id in world["conversations"].items():
        names = {"id": conversation_id, "friend": world["friend"], "member": world["member"]}
        # when
        response = getattr(client, method)(path.format(**names), _fill(body, names), format="json")
        answers[case] = (response.status_code, response.json())
    # then: every case is answered exactly as the missing one
    message = "No such conversation, or you are not in it."
    expected = (404, {"code": "conversation_not_found", "message": message, "details": {}})
    assert answers == dict.fromkeys(answers, expected)


@pytest.mark.django_db
def test_recall__a_message_not_yours_to_see_or_missing__the_same_404(
    world: dict[str, Any],
) -> None:
    # given: Mallory joins the group after its first message was sent
    from messaging.services.conversations import group_invite

    group_invite(
        ticket=world["owner"].ticket, user_id=world["owner"].user.pk,
        conversation_id=world["late_group"], member_ids=[world["mallory"].user.pk],
    )  # fmt: skip
    client = APIClient(headers=world["mallory"].headers)
    answers = {}
    for case, message_id in world["messages"].items():
        # when
        response = client.post("/api/messaging/recall", {"message": message_id}, format="json")
        answers[case] = (response.status_code, response.json())
    # then
    message = "No such message in your conversations."
    expected = (404, {"code": "message_not_found", "message": message, "details": {}})
    assert answers == dict.fromkeys(answers, expected)
