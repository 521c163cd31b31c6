"""Client JSON: bounded nesting and the text rule (no U+0000, no unpaired
surrogate) for every JSON body, on every endpoint, answered with a clear 4xx
instead of a database error (issue 11, item 8)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from messaging.models import Conversation, Message
from messaging.services.conversations import direct_open, group_create
from tests.factories import (
    befriend_all,
    login_session,
    make_follower,
    make_friends,
    make_official_account,
    make_user,
)
from wechat_core.jsoninput import InvalidText, JsonTooDeep, json_load

NUL, SURROGATE = "\\u0000", "\\ud800"  # as they arrive: JSON escapes

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _has_refused_text(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(_has_refused_text(item) for item in value)
    if isinstance(value, dict):
        return any(_has_refused_text(k) or _has_refused_text(v) for k, v in value.items())
    return False


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


@given(value=json_values)
def test_json_load__any_json__read_back_unless_a_string_breaks_the_text_rule(value: Any) -> None:
    # given: any JSON value, as a client would encode it (with \u escapes)
    raw = json.dumps(value)
    # when / then
    if _has_refused_text(value):
        with pytest.raises(InvalidText):
            json_load(raw)
    else:
        assert json_load(raw) == value
        assert json_load(raw.encode()) == value


@pytest.mark.parametrize("depth", [33, 1000, 20_000])
def test_json_load__nested_past_the_limit__refused_as_too_deep(depth: int) -> None:
    with pytest.raises(JsonTooDeep):
        json_load("[" * depth + "]" * depth)
    with pytest.raises(JsonTooDeep):
        json_load('{"a":' * depth + "1" + "}" * depth)


def test_json_load__nested_to_the_limit__read() -> None:
    value = json_load("[" * 32 + "]" * 32)
    assert _depth(value) == 32


def test_json_load__refused_string__names_where_it_was() -> None:
    with pytest.raises(InvalidText) as refused:
        json_load('{"content": {"mentions": [1], "text": "a' + NUL + 'b"}}')
    assert refused.value.details == {"field": "content.text"}
    with pytest.raises(InvalidText) as refused:
        json_load('{"items": ["ok", "' + SURROGATE + '"]}')
    assert refused.value.details == {"field": "items.1"}


@pytest.fixture
def world() -> dict[str, Any]:
    """Alice, her friend Bob, their chat and a group."""
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    session = login_session(alice)
    chat = direct_open(ticket=session.ticket, user_id=alice.pk, peer_id=bob.pk)
    group = group_create(ticket=session.ticket, user_id=alice.pk, name="G", member_ids=[bob.pk])
    stranger = make_user()
    return {"session": session, "chat": chat.pk, "group": group.pk, "bob": bob.pk,
            "stranger": stranger.pk}  # fmt: skip


# (method, path, body with {text} where the odd text goes) for every kind of user text
ENDPOINTS: list[tuple[str, str, str]] = [
    ("post", "/api/messaging/send",
     '{{"conversation": {chat}, "client_msg_id": "odd-1", "content": {{"text": "a{text}b"}}}}'),
    ("post", "/api/messaging/groups", '{{"name": "n{text}", "members": [{bob}]}}'),
    ("patch", "/api/messaging/groups/{group}", '{{"name": "n{text}"}}'),
    ("patch", "/api/messaging/groups/{group}", '{{"announcement": "a{text}"}}'),
    ("patch", "/api/accounts/me", '{{"nickname": "n{text}"}}'),
    ("patch", "/api/accounts/me", '{{"signature": "s{text}"}}'),
    ("post", "/api/contacts/requests", '{{"to_user_id": {stranger}, "greeting": "g{text}"}}'),
    ("patch", "/api/contacts/friends/{bob}", '{{"remark": "r{text}"}}'),
    ("post", "/api/messaging/send",
     '{{"conversation": {chat}, "client_msg_id": "odd-2", "content": {{"text": "hi"}}, '
     '"k{text}": 1}}'),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_api__odd_text_anywhere__400_invalid_text_and_nothing_logged_or_stored(
    world: dict[str, Any], method: str, path: str, body: str, text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # given
    client = Client(HTTP_AUTHORIZATION=f"Ticket {world['session'].token}")
    messages, conversations = Message.objects.count(), Conversation.objects.count()
    # when
    with caplog.at_level(logging.ERROR):
        response = getattr(client, method)(
            path.format(**world), body.format(text=text, **world), content_type="application/json"
        )
    # then
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_text"
    assert response.json()["details"]["field"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert (Message.objects.count(), Conversation.objects.count()) == (messages, conversations)


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [33, 20_000])
def test_api__body_nested_too_deep__400_malformed_request(
    world: dict[str, Any], depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Ticket {world['session'].token}")
    with caplog.at_level(logging.ERROR):
        response = client.post(
            "/api/messaging/send", "[" * depth + "]" * depth, content_type="application/json"
        )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"
    assert "nests deeper than 32" in response.json()["message"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    ['"a' + NUL + 'b"', '"a' + SURROGATE + 'b"', "[" * 20_000 + "]" * 20_000],
    ids=["nul", "lone-surrogate", "nested-20000"],
)
def test_cgi__custom_send_with_odd_text_or_deep_json__47001_not_a_system_error(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given: an official account's developer and a follower
    account, secret = make_official_account(name="Odd Input")
    follower = make_follower(make_user(), account)
    client = Client()
    token = client.get(
        "/cgi-bin/token",
        {"grant_type": "client_credential", "appid": account.appid, "secret": secret},
    ).json()["access_token"]
    text = {"touser": follower.openid, "msgtype": "text", "text": {"content": "RAW"}}
    body = raw if raw.startswith("[") else json.dumps(text).replace('"RAW"', raw)
    # when
    with caplog.at_level(logging.ERROR):
        answer = client.generic(
            "POST", f"/cgi-bin/message/custom/send?access_token={token}", body, content_type=""
        ).json()
    # then
    assert answer["errcode"] == 47001, answer
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not Message.objects.filter(conversation_id=follower.conversation_id).exists()


@pytest.mark.django_db
def test_api__group_of_friends_named_plainly__still_created(world: dict[str, Any]) -> None:
    """The rule refuses only what no text may hold: emoji and CJK pass."""
    session = world["session"]
    befriend_all(session.user, [make_user()])
    client = Client(HTTP_AUTHORIZATION=f"Ticket {session.token}")
    response = client.post(
        "/api/messaging/groups",
        json.dumps({"name": "家人 \U0001f600", "members": [world["bob"]]}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["conversation"]["name"] == "家人 \U0001f600"
