"""The messaging HTTP API: the same operations as the websocket, for clients without
one; conversation lists with unread counts; groups; uploads served only to members."""

from __future__ import annotations

import io
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image
from rest_framework.test import APIClient

from devtools.processes import ServerProcess
from messaging.models import Attachment, Message
from tests.factories import Session, login_session, make_friends, make_user


def api(session: Session) -> APIClient:
    return APIClient(headers=session.headers)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (7, 193, 96)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(session: Session, kind: str, data: bytes, name: str) -> Any:
    file = io.BytesIO(data)
    file.name = name
    return api(session).post(
        "/api/messaging/uploads", {"kind": kind, "file": file}, format="multipart"
    )


@pytest.fixture
def pair() -> tuple[Session, Session, int]:
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    a, b = login_session(alice), login_session(bob)
    chat = api(a).post("/api/messaging/conversations/direct", {"user_id": bob.pk}, format="json")
    return a, b, chat.json()["conversation"]["id"]


def send(session: Session, conversation: int, content: dict[str, Any], msg_id: str = "") -> Any:
    body = {"conversation": conversation, "client_msg_id": msg_id or uuid.uuid4().hex,
            "content": content}  # fmt: skip
    return api(session).post("/api/messaging/send", body, format="json")


@pytest.mark.django_db
def test_send__over_http__201_then_200_with_the_same_ack_on_retry(pair: Any) -> None:
    a, _, chat = pair
    first = send(a, chat, {"kind": "text", "text": "hi"}, msg_id="http-1")
    again = send(a, chat, {"kind": "text", "text": "hi"}, msg_id="http-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "duplicate": True}


@pytest.mark.django_db
def test_conversations__list_unread_counts_and_clear_them_on_read(pair: Any) -> None:
    a, b, chat = pair
    for n in range(3):
        send(a, chat, {"text": f"{n}"})
    listed = api(b).get("/api/messaging/conversations").json()["results"]
    assert [(c["conversation"]["id"], c["unread"]) for c in listed] == [(chat, 3)]
    assert listed[0]["last_message"]["body"] == {"text": "2"}
    assert listed[0]["conversation"]["peer"] == a.user.pk
    read = api(b).post("/api/messaging/read", {"conversation": chat, "seq": 3}, format="json")
    assert read.json() == {"conversation": chat, "read_seq": 3}
    assert api(b).get("/api/messaging/conversations").json()["results"][0]["unread"] == 0
    # the sender's own messages never count as unread for her
    assert api(a).get("/api/messaging/conversations").json()["results"][0]["unread"] == 0


@pytest.mark.django_db
def test_history__pages_backwards_by_seq(pair: Any) -> None:
    a, b, chat = pair
    for n in range(5):
        send(a, chat, {"text": f"{n}"})
    latest = api(b).get(f"/api/messaging/conversations/{chat}/messages", {"limit": 2}).json()
    older = (
        api(b)
        .get(f"/api/messaging/conversations/{chat}/messages", {"limit": 2, "before": 4})
        .json()
    )
    assert [m["body"]["text"] for m in latest["messages"]] == ["3", "4"]
    assert [m["body"]["text"] for m in older["messages"]] == ["1", "2"]


@pytest.mark.django_db
def test_history__of_a_conversation_i_am_not_in__is_404(pair: Any) -> None:
    _, _, chat = pair
    outsider = login_session(make_user())
    response = api(outsider).get(f"/api/messaging/conversations/{chat}/messages")
    assert (response.status_code, response.json()["code"]) == (404, "conversation_not_found")


@pytest.mark.django_db
def test_recall__over_http__marks_the_message_recalled(pair: Any) -> None:
    a, b, chat = pair
    sent = send(a, chat, {"text": "oops"}).json()
    recalled = api(a).post("/api/messaging/recall", {"message": sent["id"]}, format="json")
    assert recalled.status_code == 200
    history = api(b).get(f"/api/messaging/conversations/{chat}/messages").json()["messages"]
    assert [(m["kind"], m["recalled"]) for m in history] == [("text", True), ("recall", False)]


@pytest.mark.django_db
def test_groups__create_invite_rename_remove_over_http() -> None:
    owner, alice, bob = make_user(nickname="O"), make_user(nickname="A"), make_user(nickname="B")
    make_friends(owner, alice)
    make_friends(owner, bob)
    o = login_session(owner)
    created = api(o).post(
        "/api/messaging/groups", {"name": "Team", "members": [alice.pk]}, format="json"
    )
    assert created.status_code == 201
    group = created.json()["conversation"]["id"]
    invited = api(o).post(
        f"/api/messaging/groups/{group}/members", {"user_ids": [bob.pk]}, format="json"
    )
    assert invited.json()["body"] == {"event": "joined", "by": owner.pk, "users": [bob.pk]}
    renamed = api(o).patch(f"/api/messaging/groups/{group}", {"name": "Team 2"}, format="json")
    assert renamed.json()["conversation"]["name"] == "Team 2"
    assert api(o).put(f"/api/messaging/groups/{group}/admins/{alice.pk}").status_code == 204
    assert api(o).delete(f"/api/messaging/groups/{group}/members/{bob.pk}").status_code == 204
    detail = api(o).get(f"/api/messaging/conversations/{group}").json()
    assert {(m["user"]["id"], m["role"]) for m in detail["members"]} == {
        (owner.pk, "owner"),
        (alice.pk, "admin"),
    }
    a = login_session(alice)
    assert api(a).post(f"/api/messaging/groups/{group}/leave").status_code == 204


@pytest.mark.django_db
def test_upload__image_sent_in_a_chat__readable_by_members_only(pair: Any) -> None:
    a, b, chat = pair
    uploaded = upload(a, "image", png_bytes(), "cat.png")
    assert uploaded.status_code == 201
    attachment = uploaded.json()
    assert (attachment["kind"], attachment["content_type"]) == ("image", "image/png")
    outsider = login_session(make_user())
    url = f"/api/messaging/attachments/{attachment['id']}"
    # before sending, only the uploader may read it
    assert api(a).get(url).status_code == 200
    assert api(b).get(url).status_code == 404
    sent = send(a, chat, {"kind": "image", "attachment": attachment["id"], "text": "look"})
    assert sent.status_code == 201
    fetched = api(b).get(url)
    assert fetched.status_code == 200
    assert fetched.getvalue().startswith(b"\x89PNG")
    assert api(outsider).get(url).status_code == 404
    assert Message.objects.get(pk=sent.json()["id"]).body["attachment"] == attachment["id"]


@pytest.mark.django_db
def test_upload__file_of_an_accepted_type__is_stored_and_served_as_a_download(pair: Any) -> None:
    a, _, _ = pair
    uploaded = upload(a, "file", b"%PDF-1.7 minimal", "report.pdf")
    assert uploaded.json()["content_type"] == "application/pdf"
    response = api(a).get(f"/api/messaging/attachments/{uploaded.json()['id']}")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="report.pdf"')


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "data", "name", "status", "code"),
    [
        ("file", b"MZ\x90\x00", "setup.exe", 400, "invalid_content"),
        ("image", b"not an image", "fake.png", 400, "invalid_content"),
        ("video", b"x", "x.mp4", 400, "invalid"),
    ],
)
def test_upload__refused_types__are_400(
    pair: Any, kind: str, data: bytes, name: str, status: int, code: str
) -> None:
    a, _, _ = pair
    response = upload(a, kind, data, name)
    assert (response.status_code, response.json()["code"]) == (status, code)


@pytest.mark.django_db
def test_upload__over_the_size_limit__is_413(pair: Any, settings: Any) -> None:
    settings.MESSAGING_FILE_MAX_BYTES = 1000
    a, _, _ = pair
    response = upload(a, "file", b"x" * 1001, "big.txt")
    assert response.status_code == 413


@pytest.mark.django_db
def test_send__someone_elses_attachment__is_refused(pair: Any) -> None:
    a, b, chat = pair
    theirs = upload(b, "image", png_bytes(), "b.png").json()
    response = send(a, chat, {"kind": "image", "attachment": theirs["id"]})
    assert (response.status_code, response.json()["code"]) == (404, "attachment_not_found")


# --- Long-poll sync, against a real server ------------------------------------------------


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_long_poll__waits_for_a_message_and_returns_it_when_it_lands(
    asgi_servers: list[ServerProcess], pair: Any
) -> None:
    a, b, chat = pair
    server, other = asgi_servers
    key = httpx.get(
        f"{server.url}/api/messaging/sync", params={"timeout": 0}, headers=b.headers
    ).json()["key"]
    result: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        response = httpx.get(
            f"{server.url}/api/messaging/sync",
            params={"key": key, "timeout": 20},
            headers=b.headers,
            timeout=30,
        )
        result.update(response=response.json(), seconds=time.monotonic() - started)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)  # the poll is waiting
    httpx.post(
        f"{other.url}/api/messaging/send",
        json={"conversation": chat, "client_msg_id": "lp-1", "content": {"text": "wake up"}},
        headers=a.headers,
    )
    poller.join(30)
    entries = result["response"]["entries"]
    assert [e["message"]["body"]["text"] for e in entries] == ["wake up"]
    assert 1.0 <= result["seconds"] < 20  # it answered on the message, not at the timeout


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_long_poll__with_nothing_new__answers_empty_at_the_timeout(
    asgi_servers: list[ServerProcess], pair: Any
) -> None:
    _, b, _ = pair
    server = asgi_servers[0]
    first = httpx.get(f"{server.url}/api/messaging/sync", params={"timeout": 0}, headers=b.headers)
    started = time.monotonic()
    response = httpx.get(
        f"{server.url}/api/messaging/sync",
        params={"key": first.json()["key"], "timeout": 1},
        headers=b.headers,
        timeout=10,
    )
    assert response.json()["entries"] == []
    assert time.monotonic() - started >= 1.0


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("params", "headers", "status", "code"),
    [
        ({"timeout": "31"}, True, 400, "invalid"),
        ({"key": "-1"}, True, 400, "invalid"),
        ({"limit": "abc"}, True, 400, "invalid"),
        ({}, False, 401, "not_authenticated"),
    ],
)
def test_long_poll__bad_input__is_a_json_4xx(
    asgi_servers: list[ServerProcess], pair: Any, params: dict[str, str], headers: bool,
    status: int, code: str,
) -> None:  # fmt: skip
    _, b, _ = pair
    response = httpx.get(
        f"{asgi_servers[0].url}/api/messaging/sync", params=params,
        headers=b.headers if headers else {},
    )  # fmt: skip
    assert (response.status_code, response.json()["code"]) == (status, code)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_upload__malformed_multipart_through_daphne__is_our_json_400(
    asgi_servers: list[ServerProcess], pair: Any
) -> None:
    # Twisted would answer this itself with an empty 400 (see wechat_core.daphne_compat)
    a, _, _ = pair
    response = httpx.post(
        f"{asgi_servers[0].url}/api/messaging/uploads",
        content=b"--c637--\r\n",
        headers={**a.headers, "Content-Type": "multipart/form-data; boundary=c637"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.django_db(transaction=True)
def test_recall__of_an_image__the_file_is_served_to_nobody_and_deleted(pair: Any) -> None:
    # given: Alice sent Bob an image, which both can fetch
    a, b, chat = pair
    attachment = upload(a, "image", png_bytes(), "cat.png").json()
    url = f"/api/messaging/attachments/{attachment['id']}"
    sent = send(a, chat, {"kind": "image", "attachment": attachment["id"]}).json()
    assert (api(a).get(url).status_code, api(b).get(url).status_code) == (200, 200)
    stored = Attachment.objects.get(pk=attachment["id"]).file
    storage, name = stored.storage, stored.name
    outsider = api(login_session(make_user())).get(url)
    # when: she recalls it
    recalled = api(a).post("/api/messaging/recall", {"message": sent["id"]}, format="json")
    # then: nobody gets the file any more, the sender included, with the answer
    # of an attachment that never existed; and the file is gone from storage
    assert recalled.status_code == 200
    answers = [(r.status_code, r.json()) for r in (api(b).get(url), api(a).get(url))]
    assert answers == [(outsider.status_code, outsider.json())] * 2
    assert outsider.json()["code"] == "attachment_not_found"
    assert not storage.exists(name)


@pytest.mark.django_db
def test_recall__one_of_two_messages_with_the_same_upload__the_other_still_shows_it(
    pair: Any,
) -> None:
    # given: one upload sent twice into the chat
    a, b, chat = pair
    attachment = upload(a, "file", b"%PDF-1.7 minimal", "report.pdf").json()
    url = f"/api/messaging/attachments/{attachment['id']}"
    first, second = (
        send(a, chat, {"kind": "file", "attachment": attachment["id"]}).json() for _ in range(2)
    )
    # when / then: recalling one keeps it for the other; recalling both ends it
    api(a).post("/api/messaging/recall", {"message": first["id"]}, format="json")
    assert api(b).get(url).status_code == 200
    api(a).post("/api/messaging/recall", {"message": second["id"]}, format="json")
    assert api(b).get(url).status_code == 404
