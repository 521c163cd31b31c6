"""The red-packet HTTP API: shapes, and errors as {code, message, details}; the
feature flag as kill switch (sending refused, grabbing what was sent goes on)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from grayrelease.services.features import feature_set_killed
from tests.factories import Session, make_feature
from tests.redpackets.conftest import Chat, group_chat

pytestmark = pytest.mark.usefixtures("balanced_now")


def _client(session: Session) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Ticket {session.token}")
    return client


def _body(chat: Chat, **fields: Any) -> dict[str, Any]:
    return {
        "conversation": chat.conversation, "client_id": "api-1", "kind": "equal",
        "total_amount": 900, "shares": 3, "greeting": "Cheers", **fields,
    }  # fmt: skip


def test_send_grab_details__the_whole_story_over_http() -> None:
    chat = group_chat(4, balance=2000)
    owner = _client(chat.sender)
    sent = owner.post("/api/redpackets", _body(chat), format="json")
    assert sent.status_code == 201
    packet = sent.json()
    assert {k: packet[k] for k in ("kind", "total_amount", "shares", "duplicate")} == {
        "kind": "equal", "total_amount": 900, "shares": 3, "duplicate": False,
    }  # fmt: skip
    assert owner.post("/api/redpackets", _body(chat), format="json").status_code == 200
    grab = _client(chat.sessions[1]).post(f"/api/redpackets/{packet['packet']}/grab")
    assert grab.status_code == 200
    assert {k: grab.json()[k] for k in ("outcome", "amount", "credit", "state")} == {
        "outcome": "grabbed", "amount": 300, "credit": "arriving", "state": "open",
    }  # fmt: skip
    detail = _client(chat.sessions[1]).get(f"/api/redpackets/{packet['packet']}").json()
    assert (detail["opened_count"], detail["opened_amount"], detail["my_amount"]) == (1, 300, 300)
    assert detail["grabs"][0]["user"] == chat.sessions[1].user.pk
    assert detail["luckiest"] is None  # an equal packet, and not finished yet


def test_send__bad_input__is_400_with_code_message_and_details() -> None:
    chat = group_chat(3, balance=2000)
    answer = _client(chat.sender).post(
        "/api/redpackets", _body(chat, shares=3, total_amount=20_001), format="json"
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "redpacket_invalid"
    assert body["details"] == {"field": "total_amount", "limit": 20_000}
    assert body["message"]


def test_covers__list_the_built_in_ones_and_the_surname_cover() -> None:
    chat = group_chat(2)
    covers = _client(chat.sender).get("/api/redpackets/covers").json()
    ids = [cover["id"] for cover in covers]
    assert ids[0] == "default"
    assert {"spring", "fortune", "lantern", "surname"} <= set(ids)


def test_kill_switch__refuses_new_packets_but_lets_members_open_those_already_sent() -> None:
    # given: red packets released to everyone, a packet sent
    make_feature("redpackets", percentage_bp=10_000)
    chat = group_chat(3, balance=2000)
    owner = _client(chat.sender)
    packet = owner.post("/api/redpackets", _body(chat), format="json").json()["packet"]
    # when: an operator pulls the kill switch
    feature_set_killed(key="redpackets", killed=True, actor=None)
    refused = owner.post("/api/redpackets", _body(chat, client_id="api-2"), format="json")
    grab = _client(chat.sessions[2]).post(f"/api/redpackets/{packet}/grab")
    # then
    assert (refused.status_code, refused.json()["code"]) == (403, "redpackets_disabled")
    assert (grab.status_code, grab.json()["outcome"]) == (200, "grabbed")
