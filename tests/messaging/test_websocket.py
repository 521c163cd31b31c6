"""The SYNC websocket end to end: real daphne processes, real websockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from websockets.typing import Subprotocol

from devtools.processes import ServerProcess
from messaging.services.conversations import direct_open
from tests.factories import login_session, make_friends, make_user
from tests.support.chat import Raw, client_for, drain_messages, raw_connect, run, ws_url

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_send__over_one_server__reaches_a_friend_connected_to_another(
    asgi_servers: list[ServerProcess],
) -> None:
    # given: Alice on server 1, Bob on server 2, friends with a 1:1 chat
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    alice_session, bob_session = login_session(alice), login_session(bob)
    chat = direct_open(ticket=alice_session.ticket, user_id=alice.pk, peer_id=bob.pk)

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with (
            client_for(alice_session, asgi_servers[:1]) as alice_client,
            client_for(bob_session, asgi_servers[1:]) as bob_client,
        ):
            # when
            ack = await alice_client.send(chat.pk, {"kind": "text", "text": "hello Bob"})
            received = await drain_messages(bob_client, 1)
            return ack, received

    ack, received = run(scenario())
    # then
    assert ack["seq"] == 1
    assert received[0]["id"] == ack["id"]
    assert received[0]["body"] == {"text": "hello Bob"}


def test_connect__without_a_ticket__gets_an_error_frame_and_close_4001(
    asgi_servers: list[ServerProcess],
) -> None:
    async def scenario() -> tuple[dict[str, Any], int | None]:
        protocols = [Subprotocol("wechat.sync.v1")]
        async with websockets.connect(ws_url(asgi_servers[0]), subprotocols=protocols) as ws:
            frame = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return frame, ws.close_code

    frame, code = run(scenario())
    assert (frame["type"], frame["code"], code) == ("error", "ticket_invalid", 4001)


@pytest.fixture
def chat_pair() -> tuple[Any, Any, int]:
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    a, b = login_session(alice), login_session(bob)
    chat = direct_open(ticket=a.ticket, user_id=alice.pk, peer_id=bob.pk)
    return a, b, chat.pk


BAD_FRAMES: list[tuple[str, dict[str, Any] | str | bytes, str]] = [
    ("not json", "{nope", "malformed_frame"),
    ("json array", "[1, 2]", "malformed_frame"),
    ("unknown type", {"type": "dance", "id": "x"}, "unknown_frame_type"),
    ("sync key as string", {"type": "sync", "id": "x", "key": "5"}, "invalid"),
    ("negative key", {"type": "sync", "id": "x", "key": -1}, "invalid"),
    ("send without content",
     {"type": "send", "id": "x", "conversation": 1, "client_msg_id": "a"}, "invalid"),
    ("send to unknown conversation",
     {"type": "send", "id": "x", "conversation": 999999999, "client_msg_id": "u1",
      "content": {"kind": "text", "text": "hi"}}, "conversation_not_found"),
    ("recall bool id", {"type": "recall", "id": "x", "message": True}, "invalid"),
    ("read huge seq", {"type": "read", "id": "x", "conversation": 1, "seq": 2**70}, "invalid"),
    ("binary frame", b"\x00\x01", "malformed_frame"),
    ("text with U+0000",
     '{"type": "send", "id": "x", "conversation": 1, "client_msg_id": "z1", '
     '"content": {"text": "a\\u0000b"}}', "invalid_text"),
    ("text with a lone surrogate",
     '{"type": "send", "id": "x", "conversation": 1, "client_msg_id": "z2", '
     '"content": {"text": "a\\udc00b"}}', "invalid_text"),
    ("nested 20,000 levels", "[" * 20_000 + "]" * 20_000, "malformed_frame"),
    ("nested past the limit", '{"type": "sync", "id": "x", "k": ' + "[" * 40 + "]" * 40 + "}",
     "malformed_frame"),
]  # fmt: skip


def test_bad_frames__each_gets_an_error_frame_and_the_connection_stays_useful(
    asgi_servers: list[ServerProcess], chat_pair: Any
) -> None:
    a, _, chat = chat_pair

    async def scenario() -> tuple[list[str], dict[str, Any]]:
        async with raw_connect(asgi_servers[0], a.token) as ws:
            raw = Raw(ws)
            assert (await raw.recv())["type"] == "hello"
            codes = []
            for _label, frame, _code in BAD_FRAMES:
                await raw.send(frame)
                reply = await raw.recv()
                assert reply["type"] == "error", reply
                codes.append(reply["code"])
            # the same connection still sends
            ack = await raw.reply_to(
                {"type": "send", "id": "ok", "conversation": chat,
                 "client_msg_id": "after-errors", "content": {"text": "still here"}}
            )  # fmt: skip
            return codes, ack

    codes, ack = run(scenario())
    assert codes == [code for _, _, code in BAD_FRAMES]
    assert ack["type"] == "send.ack"
    assert ack["message"]["seq"] == 1
    assert "SYNC frame failed" not in asgi_servers[0].log()


def test_errors__of_a_readable_frame__echo_its_id_so_pipelined_requests_match(
    asgi_servers: list[ServerProcess], chat_pair: Any
) -> None:
    # given: a client that pipelines requests without waiting for answers
    a, _, chat = chat_pair
    frames = [
        {"type": "send", "id": "ok-1", "conversation": chat, "client_msg_id": "p1",
         "content": {"text": "one"}},
        {"type": "send", "id": "bad-text", "conversation": chat, "client_msg_id": "p2",
         "content": {"text": "a\u0000b"}},
        {"type": "send", "id": "bad-field", "conversation": "seven", "client_msg_id": "p3",
         "content": {"text": "x"}},
        {"type": "dance", "id": 99},
        {"type": "send", "id": "ok-2", "conversation": chat, "client_msg_id": "p4",
         "content": {"text": "two"}},
    ]  # fmt: skip

    async def scenario() -> list[dict[str, Any]]:
        async with raw_connect(asgi_servers[0], a.token) as ws:
            raw = Raw(ws)
            await raw.recv()
            for frame in frames:
                await raw.send(frame)
            answers: list[dict[str, Any]] = []
            while len(answers) < len(frames):
                if (answer := await raw.recv())["type"] != "notify":
                    answers.append(answer)
            return answers

    answers = run(scenario())
    # then: answered in the order sent, each error carrying the id of its frame
    assert [(f["type"], f["id"], f.get("code")) for f in answers] == [
        ("send.ack", "ok-1", None),
        ("error", "bad-text", "invalid_text"),
        ("error", "bad-field", "invalid"),
        ("error", 99, "unknown_frame_type"),
        ("send.ack", "ok-2", None),
    ]
    assert answers[1]["details"] == {"field": "content.text"}
    assert [a["message"]["seq"] for a in (answers[0], answers[4])] == [1, 2]


def test_oversized_frame__is_refused_and_nothing_is_stored(
    asgi_servers: list[ServerProcess], chat_pair: Any, settings: Any
) -> None:
    a, _, chat = chat_pair
    huge = "x" * (settings.MESSAGING_MAX_FRAME_BYTES + 10)

    async def scenario() -> dict[str, Any]:
        async with raw_connect(asgi_servers[0], a.token) as ws:
            raw = Raw(ws)
            await raw.recv()
            await raw.send({"type": "send", "id": "big", "conversation": chat,
                            "client_msg_id": "big", "content": {"text": huge}})  # fmt: skip
            return await raw.recv()  # an unread frame's error cannot echo its id

    reply = run(scenario())
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "frame_too_large", None)
    from messaging.models import Message

    assert not Message.objects.exists()


def test_heartbeat__is_answered_with_the_interval_and_the_newest_seq(
    asgi_servers: list[ServerProcess], chat_pair: Any, settings: Any
) -> None:
    a, _, chat = chat_pair

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with raw_connect(asgi_servers[0], a.token) as ws:
            raw = Raw(ws)
            hello = await raw.recv()
            await raw.reply_to({"type": "send", "id": "s", "conversation": chat,
                                "client_msg_id": "hb", "content": {"text": "x"}})  # fmt: skip
            return hello, await raw.reply_to({"type": "heartbeat", "id": 7})

    hello, beat = run(scenario())
    assert hello["heartbeat"] == settings.MESSAGING_HEARTBEAT_SECONDS
    assert (beat["type"], beat["id"], beat["interval"]) == ("heartbeat.ack", 7, hello["heartbeat"])
    assert beat["max_seq"] >= 1


def test_notify__reaches_the_recipient_and_sync_returns_the_message(
    asgi_servers: list[ServerProcess], chat_pair: Any
) -> None:
    a, b, chat = chat_pair

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with raw_connect(asgi_servers[1], b.token) as bob_ws:
            bob = Raw(bob_ws)
            hello = await bob.recv()
            async with raw_connect(asgi_servers[0], a.token) as alice_ws:
                alice = Raw(alice_ws)
                await alice.recv()
                ping = {"type": "send", "id": 1, "conversation": chat,
                        "client_msg_id": "n1", "content": {"text": "ping"}}  # fmt: skip
                await alice.reply_to(ping)
            notify = await bob.recv()
            page = await bob.reply_to({"type": "sync", "id": "s", "key": hello["max_seq"]})
            return notify, page

    notify, page = run(scenario())
    assert notify["type"] == "notify"
    assert page["entries"][-1]["seq"] == notify["seq"]
    assert page["entries"][-1]["message"]["body"] == {"text": "ping"}
    assert str(chat) in page["conversations"]


def test_revoked_ticket__open_connection_is_closed_with_4001(
    asgi_servers: list[ServerProcess], chat_pair: Any
) -> None:
    from accounts.services.devices import logout

    a, _, _ = chat_pair

    async def scenario() -> tuple[dict[str, Any], int | None]:
        async with raw_connect(asgi_servers[0], a.token) as ws:
            raw = Raw(ws)
            await raw.recv()
            await asyncio.to_thread(_logout)
            frame = await raw.recv()
            with pytest.raises(websockets.ConnectionClosed):
                await raw.recv()
            return frame, ws.close_code

    def _logout() -> None:
        from django.db import connection

        try:
            logout(ticket=a.ticket, user_id=a.user.pk)
        finally:
            connection.close()

    frame, code = run(scenario())
    assert (frame["type"], frame["code"], code) == ("error", "ticket_revoked", 4001)


def test_revoked_ticket__cannot_connect(asgi_servers: list[ServerProcess], chat_pair: Any) -> None:
    from accounts.services.devices import logout

    a, _, _ = chat_pair
    logout(ticket=a.ticket, user_id=a.user.pk)

    async def scenario() -> tuple[dict[str, Any], int | None]:
        async with raw_connect(asgi_servers[0], a.token) as ws:
            frame = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return frame, ws.close_code

    frame, code = run(scenario())
    assert (frame["code"], code) == ("ticket_revoked", 4001)


def test_throttle__too_many_sends_get_a_throttle_frame_and_nothing_is_stored(
    live_env: dict[str, str], live_log_dir: Any, chat_pair: Any
) -> None:
    # given: a server allowing 3 messages a minute
    from devtools.processes import start_asgi_server
    from messaging.models import Message

    server = start_asgi_server(
        log_dir=live_log_dir, env={**live_env, "MESSAGING_SENDS_PER_MINUTE": "3"}, name="throttled"
    )
    a, _, chat = chat_pair

    async def scenario() -> list[dict[str, Any]]:
        async with raw_connect(server, a.token) as ws:
            raw = Raw(ws)
            await raw.recv()
            return [
                await raw.reply_to({"type": "send", "id": n, "conversation": chat,
                                    "client_msg_id": f"t{n}", "content": {"text": f"{n}"}})
                for n in range(4)
            ]  # fmt: skip

    try:
        replies = run(scenario())
    finally:
        server.stop()
    assert [r["type"] for r in replies] == ["send.ack"] * 3 + ["throttle"]
    assert replies[3]["tier"] == 1
    assert 0 < replies[3]["retry_after"] <= 60
    assert Message.objects.filter(conversation_id=chat).count() == 3


def test_idle_link__heartbeats_stopped__is_closed_4008_while_a_beating_link_stays(
    live_env: dict[str, str], live_log_dir: Any, chat_pair: Any
) -> None:
    # given: a server asking for a heartbeat every second
    from devtools.processes import start_asgi_server

    server = start_asgi_server(
        log_dir=live_log_dir, env={**live_env, "MESSAGING_HEARTBEAT_SECONDS": "1"}, name="idle"
    )
    a, b, _ = chat_pair

    async def scenario() -> tuple[int | None, dict[str, Any]]:
        async with (
            raw_connect(server, a.token) as silent_ws,
            raw_connect(server, b.token) as beating_ws,
        ):
            silent, beating = Raw(silent_ws), Raw(beating_ws)
            await silent.recv()
            await beating.recv()
            # when: one link beats every half second, the other says nothing
            for beat in range(12):
                await beating.reply_to({"type": "heartbeat", "id": beat})
                await asyncio.sleep(0.5)
                if silent_ws.close_code is not None:
                    break
            with pytest.raises(websockets.ConnectionClosed):
                await silent.recv(timeout=10)
            return silent_ws.close_code, await beating.reply_to({"type": "heartbeat", "id": "last"})

    try:
        silent_code, last_beat = run(scenario())
    finally:
        server.stop()
    # then
    assert silent_code == 4008
    assert last_beat["type"] == "heartbeat.ack"


@pytest.mark.parametrize(
    ("path", "origin", "accepted"),
    [
        ("/ws/sync", None, True),  # apps and the Python client send no Origin
        ("/ws/sync", "http://127.0.0.1:8000", True),  # a page served by us
        ("/ws/sync", "https://evil.example.net", False),  # another site's page
        ("/ws/sync", "null", False),  # a sandboxed page
        ("/ws/elsewhere", None, False),  # no such endpoint
    ],
)
def test_handshake__origin_and_path__decide_whether_the_websocket_opens(
    asgi_servers: list[ServerProcess], chat_pair: Any, path: str, origin: str | None, accepted: bool
) -> None:
    a, _, _ = chat_pair
    url = asgi_servers[0].url.replace("http://", "ws://") + path
    protocols = [Subprotocol("wechat.sync.v1"), Subprotocol(f"ticket.{a.token}")]

    async def scenario() -> dict[str, Any] | int:
        try:
            async with websockets.connect(url, subprotocols=protocols, origin=origin) as ws:  # type: ignore[arg-type]
                frame: dict[str, Any] = json.loads(await ws.recv())
                return frame
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    outcome = run(scenario())
    if accepted:
        assert isinstance(outcome, dict)
        assert outcome["type"] == "hello"
    else:
        assert outcome == 403


@pytest.mark.parametrize(
    ("offered", "selected"),
    [(["wechat.sync.v1"], "wechat.sync.v1"), ([], None)],
    ids=["protocol-offered", "nothing-offered"],
)
def test_connect__ticket_in_the_authorization_header__selects_the_protocol_if_offered(
    asgi_servers: list[ServerProcess], chat_pair: Any, offered: list[str], selected: str | None
) -> None:
    # given: a non-browser client with its ticket in a header
    a, _, _ = chat_pair

    async def scenario() -> tuple[str | None, dict[str, Any]]:
        async with websockets.connect(
            ws_url(asgi_servers[0]),
            subprotocols=[Subprotocol(p) for p in offered] or None,
            additional_headers={"Authorization": f"Ticket {a.token}"},
        ) as ws:
            return ws.subprotocol, json.loads(await ws.recv())

    # when
    subprotocol, hello = run(scenario())
    # then: the server picks wechat.sync.v1 whenever it is offered, as browsers require
    assert (subprotocol, hello["type"]) == (selected, "hello")
