"""Every payload the server actually emits has the shape messaging.wire defines
(Zulip's test_events.py): real operations of every kind (messages with mentions,
quotes and images, recalls, red packets sent and opened, messages hidden, reads,
receipts, group changes, contacts, feature flags, shake sponsor assets, official
accounts, old clients), their answers and the entries they write, read over HTTP
and as websocket frames from live servers, each checked against its typed
definition; and the OpenAPI components say the same fields."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from drf_spectacular.generators import SchemaGenerator
from PIL import Image

from devtools.processes import ServerProcess
from grayrelease.models import FeatureChange
from grayrelease.services.features import feature_percentage_set
from grayrelease.services.push import flag_push_run
from messaging import wire
from messaging.services.conversations import (
    direct_open,
    group_create,
    group_invite,
    group_leave,
    group_set_admin,
    group_update,
)
from publicplatform.tasks import greet_follower
from shake.services.assets import asset_store, assets_push_run
from tests.factories import (
    Session,
    fund_wallet,
    login_session,
    make_feature,
    make_follower,
    make_friends,
    make_official_account,
    make_user,
    send_request,
)
from tests.shake.conftest import approved_round
from tests.support.chat import Raw, raw_connect, run
from tests.support.wirecheck import (
    entry_errors,
    frame_errors,
    sync_answer_errors,
    type_errors,
)

KINDS_SEEN = {"message", "read", "contact", "flag", "shake_assets", "message_update"}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    return buffer.getvalue()


class Http:
    """A client of one live server, checking every JSON answer it gets."""

    def __init__(self, server: ServerProcess, session: Session) -> None:
        self.client = httpx.Client(base_url=server.url, headers=session.headers, timeout=30)

    def call(self, method: str, path: str, typed: Any = None, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        body = response.json()
        if typed is not None:
            assert type_errors(body, typed) == [], path
        return body


@pytest.fixture
def people() -> dict[str, Session]:
    alice, bob, carol = (make_user(nickname=name) for name in ("Alice", "Bob", "Carol"))
    make_friends(alice, bob)
    make_friends(alice, carol)
    sessions = {"alice": login_session(alice), "bob": login_session(bob)}
    sessions["carol"] = login_session(carol)
    sessions["old"] = login_session(bob, client_version="1.0.0")
    return sessions


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_every_payload__over_http__has_its_typed_shape(
    asgi_servers: list[ServerProcess], people: dict[str, Session]
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    a = Http(asgi_servers[0], alice)
    b = Http(asgi_servers[1], bob)
    # given: a 1:1 chat, a group that changes, contacts, a flag, a shake activity's new
    # sponsor assets and an official account
    chat = direct_open(ticket=alice.ticket, user_id=alice.user.pk, peer_id=bob.user.pk).pk
    group = group_create(
        ticket=alice.ticket, user_id=alice.user.pk, name="G", member_ids=[bob.user.pk]
    ).pk
    group_invite(
        ticket=alice.ticket,
        user_id=alice.user.pk,
        conversation_id=group,
        member_ids=[carol.user.pk],
    )
    group_update(
        ticket=alice.ticket,
        user_id=alice.user.pk,
        conversation_id=group,
        name="H",
        announcement="!",
    )
    group_set_admin(
        ticket=alice.ticket,
        user_id=alice.user.pk,
        conversation_id=group,
        member_id=bob.user.pk,
        admin=True,
    )
    group_leave(ticket=carol.ticket, user_id=carol.user.pk, conversation_id=group)
    send_request(make_user(nickname="Dan"), bob.user)
    make_feature("web.wire", client_visible=True, percentage_bp=0)
    feature_percentage_set(key="web.wire", percentage_bp=10_000, actor=None)
    change = FeatureChange.objects.filter(feature_key="web.wire").order_by("-id").first()
    assert change is not None
    flag_push_run(change_id=change.pk)
    round_ = approved_round(prizes_each=1)
    sponsor = round_.activity.sponsors.order_by("pk").values_list("pk", flat=True)[0]
    asset_store(sponsor_id=sponsor, role="logo", content=_png())
    assets_push_run(activity_id=round_.activity_id, version=1)
    account, _ = make_official_account(name="News", greeting="Welcome")
    follower = make_follower(bob.user, account)
    greet_follower(follower.pk, 0)
    # when: messages of every kind go through the HTTP API
    upload = a.call(
        "POST",
        "/api/messaging/uploads",
        files={"file": ("a.png", _png(), "image/png")},
        data={"kind": "image"},
    )
    first = a.call(
        "POST",
        "/api/messaging/send",
        wire.AckView,
        json={"conversation": chat, "client_msg_id": "w1", "content": {"text": "hi"}},
    )
    image = a.call(
        "POST",
        "/api/messaging/send",
        wire.AckView,
        json={
            "conversation": chat,
            "client_msg_id": "w2",
            "content": {"kind": "image", "attachment": upload["id"], "text": "look"},
        },
    )
    a.call(
        "POST",
        "/api/messaging/send",
        wire.AckView,
        json={
            "conversation": group,
            "client_msg_id": "w3",
            "content": {"text": "@Bob", "mentions": [bob.user.pk], "reply_to": None},
        },
    )
    b.call(
        "POST",
        "/api/messaging/send",
        wire.AckView,
        json={
            "conversation": chat,
            "client_msg_id": "w4",
            "content": {"text": "re", "reply_to": first["id"]},
        },
    )
    a.call("POST", "/api/messaging/recall", wire.AckView, json={"message": first["id"]})
    fund_wallet(alice.user, 1_000)
    packet = a.call(
        "POST",
        "/api/redpackets",
        json={
            "conversation": group,
            "client_id": "w-packet",
            "kind": "equal",
            "total_amount": 200,
            "shares": 2,
            "greeting": "Hi",
        },
    )
    b.call("POST", f"/api/redpackets/{packet['packet']}/grab")
    b.call("POST", "/api/messaging/hide", json={"message": image["id"]})
    b.call("POST", "/api/messaging/read", wire.ReadAnswer, json={"conversation": chat, "seq": 2})
    b.call(
        "POST",
        "/api/messaging/receipts",
        wire.ReceiptAnswer,
        json={"messages": [{"id": first["id"], "shown_ago_ms": 5}]},
    )
    # then: each log, read over HTTP, has only entries of the typed shapes
    seen: set[str] = set()
    for session, server in ((bob, 1), (alice, 0), (people["old"], 0)):
        client = Http(asgi_servers[server], session)
        body = client.call("GET", "/api/messaging/sync", params={"timeout": 0, "limit": 500})
        assert sync_answer_errors(body) == []
        seen |= {entry["kind"] for entry in body["entries"]}
    assert seen == KINDS_SEEN
    history = b.call("GET", f"/api/messaging/conversations/{chat}/messages")
    assert type_errors(history, dict[str, list[wire.MessageView]]) == []
    found = b.call("GET", "/api/messaging/search", params={"q": "re"})
    assert found["results"]
    assert type_errors(found, wire.MessageSearchAnswer) == []
    listing = b.call("GET", "/api/messaging/conversations")
    for row in listing["results"]:
        assert type_errors(row["conversation"], wire.ConversationView) == []
        if row["last_message"] is not None:
            assert type_errors(row["last_message"], wire.MessageView) == []


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_every_frame__over_the_websocket__has_its_typed_shape(
    asgi_servers: list[ServerProcess], people: dict[str, Session]
) -> None:
    alice, bob = people["alice"], people["bob"]
    chat = direct_open(ticket=alice.ticket, user_id=alice.user.pk, peer_id=bob.user.pk).pk
    group = group_create(
        ticket=alice.ticket, user_id=alice.user.pk, name="G", member_ids=[bob.user.pk]
    ).pk

    frames: list[dict[str, Any]] = []  # every frame received, notifies included

    async def ask(raw: Raw, frame: dict[str, Any]) -> dict[str, Any]:
        await raw.send(frame)
        while True:
            reply = await raw.recv()
            frames.append(reply)
            if reply.get("id") == frame["id"] and reply["type"] != "notify":
                return reply

    async def scenario() -> None:
        async with (
            raw_connect(asgi_servers[0], alice.token) as alice_ws,
            raw_connect(asgi_servers[1], bob.token) as bob_ws,
        ):
            a, b = Raw(alice_ws), Raw(bob_ws)
            frames.extend([await a.recv(), await b.recv()])  # hello
            send = {
                "type": "send",
                "id": 1,
                "conversation": chat,
                "client_msg_id": "f1",
                "content": {"text": "hi"},
            }
            ack = await ask(a, send)
            await ask(a, {**send, "id": 2})  # a duplicate
            mention_all = {"text": "@all", "mention_all": True}
            group_send = {**send, "id": 3, "conversation": group, "content": mention_all}
            await ask(a, {**group_send, "client_msg_id": "f2"})
            await ask(a, {"type": "recall", "id": 4, "message": ack["message"]["id"]})
            await ask(b, {"type": "read", "id": 5, "conversation": chat, "seq": 1})
            shown = [{"id": ack["message"]["id"]}]
            await ask(b, {"type": "receipt", "id": 6, "messages": shown})
            await ask(b, {"type": "heartbeat", "id": 7})
            await ask(b, {"type": "sync", "id": 8, "key": 0})
            await ask(b, {"type": "dance", "id": 9})
            await ask(b, {"type": "send", "id": 10, "conversation": 1})
            # and a notify of Bob's log growing, if none came between the answers
            while not any(frame["type"] == "notify" for frame in frames):
                frames.append(await b.recv(timeout=30))

    run(scenario())
    for frame in frames:
        assert frame_errors(frame) == [], frame
    kinds = {frame["type"] for frame in frames}
    assert kinds >= {
        "hello",
        "send.ack",
        "recall.ack",
        "read.ack",
        "receipt.ack",
        "heartbeat.ack",
        "sync.result",
        "error",
        "notify",
    }
    entries = next(frame for frame in frames if frame["type"] == "sync.result")["entries"]
    assert entries
    assert all(entry_errors(entry) == [] for entry in entries)


# --- The OpenAPI schema says the same fields ---------------------------------------------

COMPONENTS = {
    "Message": wire.MessageView,
    "SyncMessage": wire.MessageView,
    "Conversation": wire.ConversationView,
    "SyncConversation": wire.ConversationView,
    "SyncEntry": wire.EntryView,
    "Ack": wire.AckView,
    "Read": wire.ReadAnswer,
    "Receipt": wire.ReceiptAnswer,
    "Sync": wire.SyncAnswer,
    "MessageSearch": wire.MessageSearchAnswer,
    "MessageSearchHit": wire.MessageSearchHit,
}


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    generator: Any = SchemaGenerator
    schema = generator().get_schema(request=None, public=True)
    return dict(schema["components"]["schemas"])


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_openapi_component__has_the_typed_fields(components: dict[str, Any], name: str) -> None:
    component = components.get(name) or components[f"{name}Output"]
    required, optional = wire.keys_of(COMPONENTS[name])
    properties = set(component["properties"])
    # The sync variants describe the old clients' adaptations; the plain views never have them.
    adapted = {"adapted_from"} if name in ("SyncMessage", "SyncConversation") else set()
    assert properties == required | adapted
    assert set(component.get("required", [])) >= required - adapted
    if adapted:
        assert adapted <= optional
