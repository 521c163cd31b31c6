"""A member's own settings of a chat: mute and pin, the same on all their devices
(a `conversation` entry in their log), and nobody else's business."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from messaging.selectors import sync_read
from messaging.services.conversations import direct_open, group_create
from tests.factories import Session, login_session, make_friends, make_user
from tests.support.wirecheck import entry_errors

pytestmark = pytest.mark.django_db


def api(session: Session) -> APIClient:
    return APIClient(headers=session.headers)


@pytest.fixture
def trio() -> dict[str, Any]:
    """Alice with friends Bob and Carol: a 1:1 chat with Bob, a group of all three."""
    alice, bob, carol = (make_user(nickname=n) for n in ("Alice", "Bob", "Carol"))
    make_friends(alice, bob)
    make_friends(alice, carol)
    a, b, c = login_session(alice), login_session(bob), login_session(carol)
    direct = direct_open(ticket=a.ticket, user_id=alice.pk, peer_id=bob.pk).pk
    group = group_create(
        ticket=a.ticket, user_id=alice.pk, name="Trio", member_ids=[bob.pk, carol.pk]
    ).pk
    return {"a": a, "b": b, "c": c, "direct": direct, "group": group}


def settings_entries(session: Session) -> list[dict[str, Any]]:
    page = sync_read(ticket=session.ticket, user_id=session.user.pk, since=0, limit=1000)
    return [dict(e) for e in page.entries if e["kind"] == "conversation"]


def listing(session: Session) -> list[dict[str, Any]]:
    answer = api(session).get("/api/messaging/conversations")
    assert answer.status_code == 200
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def test_mute__is_in_the_list_and_detail__and_reaches_my_other_devices(trio: Any) -> None:
    a, b = trio["a"], trio["b"]
    # when Alice mutes the group from one device
    answer = api(a).patch(
        f"/api/messaging/conversations/{trio['group']}/settings", {"muted": True}, format="json"
    )
    # then the answer, her list and the chat's detail say so
    assert answer.status_code == 200
    assert answer.json() == {"conversation": trio["group"], "muted": True, "pinned": False}
    rows = {row["conversation"]["id"]: row for row in listing(a)}
    assert (rows[trio["group"]]["muted"], rows[trio["direct"]]["muted"]) == (True, False)
    detail = api(a).get(f"/api/messaging/conversations/{trio['group']}").json()
    assert (detail["muted"], detail["pinned"]) == (True, False)
    # and her log has one `conversation` entry her other devices sync
    entries = settings_entries(a)
    assert [e["payload"] for e in entries] == [
        {"conversation": trio["group"], "muted": True, "pinned": False}
    ]
    assert entry_errors(entries[0]) == []
    # while Bob's chat is not muted and his log says nothing of hers
    bob_rows = {row["conversation"]["id"]: row for row in listing(b)}
    assert bob_rows[trio["group"]]["muted"] is False
    assert settings_entries(b) == []


def test_pin__puts_the_chat_first_whatever_its_activity__and_unpin_restores(trio: Any) -> None:
    a = trio["a"]
    # given a message in the 1:1 chat, then a later one in the group
    for chat in (trio["direct"], trio["group"]):
        body = {"conversation": chat, "client_msg_id": f"m{chat}", "content": {"text": "hi"}}
        assert api(a).post("/api/messaging/send", body, format="json").status_code == 201
    assert next(r["conversation"]["id"] for r in listing(a)) == trio["group"]
    # when Alice pins the 1:1 chat
    url = f"/api/messaging/conversations/{trio['direct']}/settings"
    assert api(a).patch(url, {"pinned": True}, format="json").json()["pinned"] is True
    # then it heads her list
    rows = listing(a)
    assert [r["conversation"]["id"] for r in rows] == [trio["direct"], trio["group"]]
    assert rows[0]["pinned"] is True
    # and unpinning puts it back in activity order
    assert api(a).patch(url, {"pinned": False}, format="json").json()["pinned"] is False
    assert [r["conversation"]["id"] for r in listing(a)] == [trio["group"], trio["direct"]]
    payloads = [e["payload"]["pinned"] for e in settings_entries(a)]
    assert payloads == [True, False]


def test_setting_what_is_set__changes_nothing_and_logs_nothing(trio: Any) -> None:
    a = trio["a"]
    url = f"/api/messaging/conversations/{trio['group']}/settings"
    api(a).patch(url, {"muted": True}, format="json")
    again = api(a).patch(url, {"muted": True}, format="json")
    assert again.status_code == 200
    assert len(settings_entries(a)) == 1


def test_settings__of_a_chat_one_is_not_in__404_and_bad_values_400(trio: Any) -> None:
    c = trio["c"]
    # Carol is not in Alice and Bob's 1:1 chat
    stranger = api(c).patch(
        f"/api/messaging/conversations/{trio['direct']}/settings", {"muted": True}, format="json"
    )
    assert stranger.status_code == 404
    assert stranger.json()["code"] == "conversation_not_found"
    bad = api(c).patch(
        f"/api/messaging/conversations/{trio['group']}/settings", {"muted": "loud"}, format="json"
    )
    assert bad.status_code == 400
    assert set(bad.json()) >= {"code", "message"}
