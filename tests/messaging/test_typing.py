"""The `typing` frame: relayed live to the chat's other members, at most once per
interval, to members only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devtools.processes import ServerProcess
from messaging.services.conversations import direct_open, group_create
from tests.factories import login_session, make_friends, make_user
from tests.support.chat import Raw, raw_connect, run
from tests.support.wirecheck import frame_errors

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def trio() -> dict[str, Any]:
    alice, bob, carol = (make_user(nickname=n) for n in ("Alice", "Bob", "Carol"))
    make_friends(alice, bob)
    make_friends(alice, carol)
    a, b, c = login_session(alice), login_session(bob), login_session(carol)
    direct = direct_open(ticket=a.ticket, user_id=alice.pk, peer_id=bob.pk).pk
    group = group_create(ticket=a.ticket, user_id=alice.pk, name="G", member_ids=[bob.pk]).pk
    return {"a": a, "b": b, "c": c, "direct": direct, "group": group}


async def next_typing(raw: Raw, timeout: float) -> dict[str, Any] | None:
    """The next typing frame within `timeout` seconds (others skipped), or None."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        try:
            frame = await raw.recv(timeout=left)
        except TimeoutError:
            return None
        if frame["type"] == "typing":
            return frame
    return None


def test_typing__reaches_the_other_member_on_another_server__once_per_interval(
    asgi_servers: list[ServerProcess], trio: Any
) -> None:
    a, b = trio["a"], trio["b"]

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any], Any, Any]:
        async with (
            raw_connect(asgi_servers[0], a.token) as alice_ws,
            raw_connect(asgi_servers[1], b.token) as bob_ws,
        ):
            alice, bob = Raw(alice_ws), Raw(bob_ws)
            assert (await alice.recv())["type"] == "hello"
            assert (await bob.recv())["type"] == "hello"
            # when Alice starts typing in their 1:1 chat
            first = await alice.reply_to(
                {"type": "typing", "id": 1, "conversation": trio["direct"]}
            )
            # then Bob is told, on his server
            seen = await next_typing(bob, timeout=30)
            # and a second notice at once is answered but not relayed
            again = await alice.reply_to(
                {"type": "typing", "id": 2, "conversation": trio["direct"]}
            )
            echo = await next_typing(bob, timeout=1.5)
            # Alice herself hears nothing of her own typing
            own = await next_typing(alice, timeout=0.5)
            return [first, again], seen or {}, echo, own

    (first, again), seen, echo, own = run(scenario())
    assert first == {"type": "typing.ack", "id": 1, "relayed": True}
    assert again == {"type": "typing.ack", "id": 2, "relayed": False}
    assert seen == {"type": "typing", "conversation": trio["direct"], "user": a.user.pk}
    assert frame_errors(seen) == []
    assert frame_errors(first) == []
    assert echo is None
    assert own is None


def test_typing__in_a_chat_one_is_not_in__is_an_error_and_tells_nobody(
    asgi_servers: list[ServerProcess], trio: Any
) -> None:
    b, c = trio["b"], trio["c"]

    async def scenario() -> tuple[dict[str, Any], Any]:
        async with (
            raw_connect(asgi_servers[0], c.token) as carol_ws,
            raw_connect(asgi_servers[0], b.token) as bob_ws,
        ):
            carol, bob = Raw(carol_ws), Raw(bob_ws)
            await carol.recv(), await bob.recv()  # hello
            refused = await carol.reply_to(
                {"type": "typing", "id": "t", "conversation": trio["direct"]}
            )
            return refused, await next_typing(bob, timeout=1.5)

    refused, heard = run(scenario())
    assert (refused["type"], refused["code"]) == ("error", "conversation_not_found")
    assert heard is None
