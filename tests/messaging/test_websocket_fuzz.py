"""Fuzzing the SYNC websocket: frames of every shape (known and unknown types,
fields missing or of the wrong type, huge and odd numbers, unicode oddities,
deep nesting, raw text and bytes) sent to the real servers. Whatever comes in,
the server answers with an `error` frame it meant to send, never with
`server_error`, and never drops the link (issue 11's habit: the next 500 is
found here, not by an attacker)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from devtools.processes import ServerProcess
from messaging.services.conversations import direct_open, group_create
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from tests.factories import befriend_all, login_session, make_user
from tests.support.chat import ws_url

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

ODD_NUMBERS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**40]
ODD_TEXTS = [
    "", " ", "\x00", "a\x00b", "\ud800", "a\udfffb", "\ud83d", "\u202eevil", "\ufeff",
    "\U0001f600" * 50, "x" * 5000, "'; DROP TABLE messaging_message; --", "{}", "null",
    "<script>alert(1)</script>", "\\u0000", "ticket.t1.1.x", "\n\r\t",
]  # fmt: skip

# Text of any code point, unpaired surrogates included (st.text() leaves them out).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
odd_text = st.one_of(any_text, st.sampled_from(ODD_TEXTS))
odd_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(ODD_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
)
odd_value = st.recursive(
    odd_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)
KNOWN_TYPES = ["sync", "send", "recall", "read", "heartbeat", "receipt"]
# Examples per shape of frame (see `frames`), under a minute in all.
SHAPES = {"protocol": 100, "send": 40, "unreadable": 30}


def _nested(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


@st.composite
def contents(draw: st.DrawFn, world: dict[str, Any]) -> Any:
    def field(good: st.SearchStrategy[Any]) -> Any:
        return draw(st.one_of(good, odd_value))

    content: dict[str, Any] = {}
    plausible = {
        "kind": st.sampled_from(["text", "image", "file", "video", "recall", "system"]),
        "text": odd_text,
        "attachment": st.one_of(st.just(world["attachment"]), st.uuids().map(str)),
        "mentions": st.lists(st.sampled_from(world["users"]), max_size=4),
        "mention_all": st.booleans(),
        "reply_to": st.sampled_from(world["messages"]),
    }
    for name, good in plausible.items():
        if draw(st.booleans()):
            content[name] = field(good)
    if draw(st.integers(0, 5)) == 0:
        odd: Any = draw(odd_value)  # not an object at all, mostly
        return odd
    return content


def frames(world: dict[str, Any], shape: str) -> st.SearchStrategy[str | bytes]:
    """Frames as sent, of one shape: near the protocol, well formed sends with odd
    text (they reach the database), or unreadable ones."""
    if shape == "protocol":
        return protocol_frames(world)
    if shape == "send":
        return st.builds(
            lambda conversation, text: json.dumps(
                {"type": "send", "id": uuid.uuid4().hex, "client_msg_id": uuid.uuid4().hex,
                 "conversation": conversation, "content": {"kind": "text", "text": text}}
            ),
            st.sampled_from(world["conversations"]),
            odd_text,
        )  # fmt: skip
    return st.one_of(
        st.binary(max_size=64),
        any_text.filter(_encodable),
        st.builds(
            _nested,
            st.sampled_from([20, 33, 100, 1000, 20_000]),
            st.sampled_from(["", "1", '{"a":1}']),
        ),
    )


@st.composite
def protocol_frames(draw: st.DrawFn, world: dict[str, Any]) -> str:
    """A JSON object near the protocol: known or odd type, each field absent,
    plausible or odd, sometimes an extra key or a deep content."""
    ids = st.sampled_from(world["conversations"] + world["messages"] + ODD_NUMBERS)
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "id": st.one_of(st.text(max_size=70), st.integers()),
        "key": st.integers(0, 50),
        "limit": st.integers(1, 1000),
        "conversation": st.one_of(st.sampled_from(world["conversations"]), ids),
        "client_msg_id": st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
        "content": contents(world),
        "message": st.one_of(st.sampled_from(world["messages"]), ids),
        "seq": st.integers(0, 100),
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.one_of(st.sampled_from(world["messages"]), ids),
                    "shown_ago_ms": st.integers(-5, 10**7),
                }
            ),
            max_size=5,
        ),
    }
    frame: dict[str, Any] = {"type": draw(st.one_of(st.sampled_from(KNOWN_TYPES), odd_value))}
    for name, good in plausible.items():
        presence = draw(st.sampled_from([0, 1, 1, 2]))  # absent, plausible, odd
        if presence == 1:
            frame[name] = draw(good)
        elif presence == 2:
            frame[name] = draw(odd_value)
    if draw(st.integers(0, 9)) == 0:
        frame[draw(odd_text)] = draw(odd_value)
    if draw(st.integers(0, 9)) == 0:
        frame["content"] = json.loads(_nested(draw(st.integers(20, 500)), "1"))
    text = json.dumps(frame, ensure_ascii=draw(st.booleans()) or not _encodable(str(frame)))
    return text if _encodable(text) else json.dumps(frame)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.fixture
def world() -> dict[str, Any]:
    """Alice with a friend, their chat, a group, a few messages and an upload."""
    from tests.messaging.test_api import png_bytes

    alice, bob, carol = make_user(), make_user(), make_user()
    befriend_all(alice, [bob, carol])
    session = login_session(alice)
    chat = direct_open(ticket=session.ticket, user_id=alice.pk, peer_id=bob.pk)
    group = group_create(
        ticket=session.ticket, user_id=alice.pk, name="Fuzz", member_ids=[bob.pk, carol.pk]
    )
    messages = [
        message_send(
            ticket=session.ticket, user_id=alice.pk, conversation_id=conversation,
            client_msg_id=uuid.uuid4().hex, content=OutgoingContent("text", f"seed {n}"),
        ).message_id
        for n, conversation in enumerate([chat.pk, group.pk, chat.pk])
    ]  # fmt: skip
    from django.core.files.uploadedfile import SimpleUploadedFile

    from messaging.services.attachments import attachment_upload

    upload = SimpleUploadedFile("fuzz.png", png_bytes(), content_type="image/png")
    attachment = attachment_upload(
        ticket=session.ticket, user_id=alice.pk, kind="image", upload=upload
    )
    return {
        "token": session.token, "users": [alice.pk, bob.pk, carol.pk],
        "conversations": [chat.pk, group.pk], "messages": messages,
        "attachment": str(attachment.pk),
    }  # fmt: skip


@pytest.fixture
def links(asgi_servers: list[ServerProcess], world: dict[str, Any]) -> Iterator[list[Any]]:
    """One link to each server (daphne and uvicorn), past its hello."""
    protocols = [Subprotocol("wechat.sync.v1"), Subprotocol(f"ticket.{world['token']}")]
    with contextlib.ExitStack() as stack:
        opened = [
            stack.enter_context(connect(ws_url(server), subprotocols=protocols))
            for server in asgi_servers
        ]
        for link in opened:
            assert json.loads(link.recv(timeout=10))["type"] == "hello"
        yield opened


def _answers(link: ClientConnection, frame: str | bytes) -> list[dict[str, Any]]:
    """Send a frame, then a heartbeat as a barrier: frames are answered in order,
    so everything before the heartbeat's answer (notifies aside) answers the frame."""
    barrier = f"barrier-{uuid.uuid4().hex}"
    link.send(frame)
    link.send(json.dumps({"type": "heartbeat", "id": barrier}))
    answers: list[dict[str, Any]] = []
    while True:
        answer = json.loads(link.recv(timeout=30))
        if answer.get("id") == barrier and answer.get("type") == "heartbeat.ack":
            return answers
        if answer.get("type") != "notify":
            answers.append(answer)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_any_frame__answered_without_server_error_and_the_link_stays(
    asgi_servers: list[ServerProcess], world: dict[str, Any], links: list[Any], shape: str
) -> None:
    @settings(
        max_examples=SHAPES[shape], deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )  # fmt: skip
    @given(frame=frames(world, shape))
    def check(frame: str | bytes) -> None:
        for server, link in zip(asgi_servers, links, strict=True):
            # when: the frame is sent (a closed link raises here: a failure)
            answers = _answers(link, frame)
            # then: one answer, and an error only of a code the protocol names
            assert len(answers) == 1, (server.name, frame, answers)
            answer = answers[0]
            assert answer.get("code") != "server_error", (server.name, frame, answer)

    check()
    for server in asgi_servers:
        assert "SYNC frame failed" not in server.log()
