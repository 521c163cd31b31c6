"""Full-history search: every message a user received, in Chinese from one
character on, newest first with the text around each hit; nothing they never
received, nothing recalled; the PostgreSQL indexes answer it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from messaging.store import store_used
from messaging.store.portable import PortableStore
from messaging.store.postgresql import PostgresStore, search_match
from tests.factories import Session, login_session, make_friends, make_user

pytestmark = pytest.mark.django_db

SEARCHED = (
    "SELECT m.id FROM messaging_message m "
    "WHERE m.kind IN ('text', 'image', 'file') AND m.recalled_at IS NULL"
)


def api(session: Session) -> APIClient:
    return APIClient(headers=session.headers)


def send(session: Session, conversation: int, text: str) -> dict[str, Any]:
    body = {"conversation": conversation, "client_msg_id": uuid.uuid4().hex,
            "content": {"kind": "text", "text": text}}  # fmt: skip
    answer = api(session).post("/api/messaging/send", body, format="json")
    assert answer.status_code == 201, answer.content
    return dict(answer.json())


def search(session: Session, q: str, **params: Any) -> dict[str, Any]:
    answer = api(session).get("/api/messaging/search", {"q": q, **params})
    assert answer.status_code == 200, answer.content
    return dict(answer.json())


def texts(answer: dict[str, Any]) -> list[str]:
    return [hit["message"]["body"]["text"] for hit in answer["results"]]


@pytest.fixture
def pair() -> tuple[Session, Session, int]:
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    a, b = login_session(alice), login_session(bob)
    chat = api(a).post("/api/messaging/conversations/direct", {"user_id": bob.pk}, format="json")
    return a, b, chat.json()["conversation"]["id"]


def test_a_two_character_chinese_word__in_an_old_message__is_found_with_its_context(
    pair: Any,
) -> None:
    # given: an old message with 会议 (meeting), then 300 newer ones without it
    a, b, chat = pair
    old = send(a, chat, "我们明天下午三点开会议 记得带上周报告")
    for n in range(300):
        send(b, chat, f"消息 {n}")
    # when
    answer = search(b, "会议")
    # then: found, with where it is
    assert texts(answer) == ["我们明天下午三点开会议 记得带上周报告"]
    hit = answer["results"][0]
    assert hit["message"]["id"] == old["id"]
    assert hit["message"]["seq"] == old["seq"]
    start, end = hit["match"]
    assert hit["snippet"][start:end] == "会议"
    assert answer["conversations"][str(chat)]["peer"] == a.user.pk
    assert answer["next_before"] is None


def test_one_character_and_long_chinese_queries_and_english_in_any_case(pair: Any) -> None:
    a, b, chat = pair
    send(a, chat, "猫在睡觉")
    send(a, chat, "今天的天气很好")
    send(a, chat, "The Quarterly REPORT is ready")
    assert texts(search(b, "猫")) == ["猫在睡觉"]
    assert texts(search(b, "天气很好")) == ["今天的天气很好"]
    assert texts(search(b, "天")) == ["今天的天气很好"]
    assert texts(search(b, "quarterly report")) == ["The Quarterly REPORT is ready"]
    assert texts(search(b, "port")) == ["The Quarterly REPORT is ready"]
    assert texts(search(b, "狗")) == []


def test_a_short_latin_word__on_postgresql__matches_whole_words(pair: Any) -> None:
    a, b, chat = pair
    send(a, chat, "OK see you")
    send(a, chat, "okay then")
    assert texts(search(b, "ok")) == ["OK see you"]


def test_wildcards_in_the_query_are_plain_characters(pair: Any) -> None:
    a, b, chat = pair
    send(a, chat, "100% sure")
    send(a, chat, "1000 sure")
    assert texts(search(b, "0% s")) == ["100% sure"]
    assert texts(search(b, "_su")) == []


def test_others_conversations__never_found() -> None:
    # given: Carol and Dave talk about 项目; Alice is not in that chat
    carol, dave, alice = make_user(), make_user(), make_user()
    make_friends(carol, dave)
    c, a = login_session(carol), login_session(alice)
    chat = api(c).post("/api/messaging/conversations/direct", {"user_id": dave.pk}, format="json")
    send(c, chat.json()["conversation"]["id"], "新项目的预算")
    # then
    assert texts(search(a, "项目")) == []
    assert texts(search(c, "项目")) == ["新项目的预算"]


def test_a_group__found_from_joining_through_leaving() -> None:
    # given: Bob joins a group after its first message and leaves after the second
    owner, bob = make_user(nickname="Owner"), make_user(nickname="Bob")
    make_friends(owner, bob)
    o, b = login_session(owner), login_session(bob)
    group = api(o).post("/api/messaging/groups", {"name": "团队", "members": []}, format="json")
    gid = group.json()["conversation"]["id"]
    send(o, gid, "周报 一 加入之前")
    invited = api(o).post(f"/api/messaging/groups/{gid}/members", {"user_ids": [bob.pk]},
                          format="json")  # fmt: skip
    assert invited.status_code in (200, 201, 204)
    send(o, gid, "周报 二 在群里")
    assert api(b).post(f"/api/messaging/groups/{gid}/leave").status_code == 204
    send(o, gid, "周报 三 离开之后")
    # then: Bob finds what he received, in the group he left too
    assert texts(search(b, "周报")) == ["周报 二 在群里"]
    assert texts(search(o, "周报")) == ["周报 三 离开之后", "周报 二 在群里", "周报 一 加入之前"]


def test_a_recalled_message__is_not_found(pair: Any) -> None:
    a, b, chat = pair
    sent = send(a, chat, "密码是 1234")
    assert api(a).post("/api/messaging/recall", {"message": sent["id"]}, format="json").status_code
    assert texts(search(b, "密码")) == []


@pytest.mark.parametrize("used", [PostgresStore, PortableStore])
def test_a_message_deleted_for_me__is_not_found_by_me__still_by_the_other(
    pair: Any, used: type[PostgresStore] | type[PortableStore]
) -> None:
    a, b, chat = pair
    sent = send(a, chat, "旧地址在二楼")
    hidden = api(b).post("/api/messaging/hide", {"message": sent["id"]}, format="json")
    assert hidden.status_code == 200, hidden.content
    with store_used(used()):
        assert texts(search(b, "地址")) == []
        assert texts(search(a, "地址")) == ["旧地址在二楼"]


def test_pages__newest_first__next_before_pages_on(pair: Any) -> None:
    a, b, chat = pair
    for n in range(5):
        send(a, chat, f"早安 {n}")
    first = search(b, "早安", limit=2)
    second = search(b, "早安", limit=2, before=first["next_before"])
    third = search(b, "早安", limit=2, before=second["next_before"])
    assert [texts(first), texts(second), texts(third)] == [
        ["早安 4", "早安 3"], ["早安 2", "早安 1"], ["早安 0"]
    ]  # fmt: skip
    assert third["next_before"] is None


def test_in_one_conversation_only(pair: Any) -> None:
    a, b, chat = pair
    group = api(a).post("/api/messaging/groups", {"name": "g", "members": [b.user.pk]},
                        format="json").json()["conversation"]["id"]  # fmt: skip
    send(a, chat, "生日快乐 direct")
    send(a, group, "生日快乐 group")
    assert texts(search(b, "生日", conversation=group)) == ["生日快乐 group"]
    assert len(search(b, "生日")["results"]) == 2


def test_the_snippet__cuts_long_text_around_the_match(pair: Any, settings: Any) -> None:
    settings.MESSAGING_SEARCH_SNIPPET_CHARS = 5
    a, b, chat = pair
    send(a, chat, "一二三四五六七八九十会议十九八七六五四三二一")
    hit = search(b, "会议")["results"][0]
    assert hit["snippet"] == "…六七八九十会议十九八七六…"
    assert hit["match"] == [6, 8]


@pytest.mark.parametrize(
    ("params", "code"),
    [({"q": ""}, "invalid"), ({"q": "x" * 65}, "invalid"), ({"q": "a", "before": 0}, "invalid"),
     ({"q": "a", "limit": "many"}, "invalid")],
)  # fmt: skip
def test_bad_input__400_with_a_code(pair: Any, params: dict[str, Any], code: str) -> None:
    _, b, _ = pair
    answer = api(b).get("/api/messaging/search", params)
    assert answer.status_code == 400
    assert set(answer.json()) >= {"code", "message"}


def test_too_many_searches_a_minute__429(pair: Any, settings: Any) -> None:
    settings.MESSAGING_SEARCHES_PER_MINUTE = 2
    _, b, _ = pair
    codes = [api(b).get("/api/messaging/search", {"q": "x"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_both_stores__find_the_same_messages(pair: Any) -> None:
    a, b, chat = pair
    for text in ["会议在三楼", "开会", "Meeting at three", "会议室 Meeting room", "其他"]:
        send(a, chat, text)
    for query in ["会议", "会", "meeting", "三楼", "room", "议室 Mee"]:
        with store_used(PostgresStore()):
            indexed = search(b, query)
        with store_used(PortableStore()):
            portable = search(b, query)
        assert texts(indexed) == texts(portable), query


@pytest.mark.parametrize(("query", "index"), [("会议", "grams"), ("会", "grams"),
                                              ("ok", "grams"), ("meeting", "trgm")])  # fmt: skip
def test_postgresql__answers_from_the_search_indexes(query: str, index: str) -> None:
    # The plan uses the index when scans are made expensive: the query's expression
    # and conditions match the index's (a mismatch would scan every message).
    match, params = search_match(query)
    # The condition is the store's own; its values are parameters.
    sql = f"EXPLAIN {SEARCHED} AND {match}"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"messaging_message_search_{index}" in plan, plan


def test_history_after__loads_newer_messages_after_a_jump(pair: Any) -> None:
    a, b, chat = pair
    for n in range(10):
        send(a, chat, f"m{n}")
    url = f"/api/messaging/conversations/{chat}/messages"
    newer = api(b).get(url, {"after": 5, "limit": 3}).json()["messages"]
    between = api(b).get(url, {"after": 2, "before": 5}).json()["messages"]
    assert [m["seq"] for m in newer] == [6, 7, 8]
    assert [m["seq"] for m in between] == [3, 4]
