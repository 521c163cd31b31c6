""" "Delete for me": a member hides a message from their own history and devices;
everyone else keeps it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from messaging.selectors import sync_read
from tests.factories import Session, login_session, make_friends, make_user

pytestmark = pytest.mark.django_db


def api(session: Session) -> APIClient:
    return APIClient(headers=session.headers)


@pytest.fixture
def chat() -> dict[str, Any]:
    alice, bob, carol = (make_user(nickname=n) for n in ("Alice", "Bob", "Carol"))
    make_friends(alice, bob)
    a, b, c = login_session(alice), login_session(bob), login_session(carol)
    answer = api(a).post("/api/messaging/conversations/direct", {"user_id": bob.pk}, format="json")
    conversation = answer.json()["conversation"]["id"]
    ids = []
    for text in ("one", "two"):
        body = {"conversation": conversation, "client_msg_id": uuid.uuid4().hex,
                "content": {"text": text}}  # fmt: skip
        ids.append(api(b).post("/api/messaging/send", body, format="json").json()["id"])
    return {"a": a, "b": b, "c": c, "conversation": conversation, "ids": ids}


def history(session: Session, conversation: int) -> list[str]:
    answer = api(session).get(f"/api/messaging/conversations/{conversation}/messages")
    return [m["body"].get("text", "") for m in answer.json()["messages"]]


def test_hide__gone_from_my_history_and_logged_for_my_devices__kept_for_the_other(
    chat: Any,
) -> None:
    a, b, conversation = chat["a"], chat["b"], chat["conversation"]
    # when Alice deletes Bob's first message for herself
    answer = api(a).post("/api/messaging/hide", {"message": chat["ids"][0]}, format="json")
    # then it is gone from her history, not from Bob's
    assert answer.status_code == 200
    assert answer.json() == {
        "message": chat["ids"][0],
        "conversation": conversation,
        "hidden": True,
    }
    assert history(a, conversation) == ["two"]
    assert history(b, conversation) == ["one", "two"]
    # and her other devices learn it from her log
    page = sync_read(ticket=a.ticket, user_id=a.user.pk, since=0, limit=100)
    updates = [e for e in page.entries if e["kind"] == "message_update"]
    assert [(e["conversation"], e["payload"]) for e in updates] == [
        (conversation, {"message": chat["ids"][0], "hidden": True})
    ]
    # hiding it again changes nothing
    again = api(a).post("/api/messaging/hide", {"message": chat["ids"][0]}, format="json")
    assert again.status_code == 200
    page = sync_read(ticket=a.ticket, user_id=a.user.pk, since=0, limit=100)
    assert len([e for e in page.entries if e["kind"] == "message_update"]) == 1


def test_hide__a_message_of_a_chat_one_is_not_in__404(chat: Any) -> None:
    answer = api(chat["c"]).post("/api/messaging/hide", {"message": chat["ids"][0]}, format="json")
    assert answer.status_code == 404
    assert answer.json()["code"] == "message_not_found"
    assert history(chat["b"], chat["conversation"]) == ["one", "two"]
