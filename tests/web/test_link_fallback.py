"""Link management: a browser whose websockets are blocked (as by a proxy that
refuses them) chats over the HTTP long-poll, and returns to the websocket when
the way is clear again (docs/protocol.md §5)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from devtools.processes import ServerProcess
from tests.factories import make_friends, make_user
from tests.support.browser import ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_websockets_blocked__chats_over_the_long_poll__and_returns_to_the_websocket(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice behind a proxy that blocks websockets, Bob on a normal network
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    alice = ChatPage.login_without_websockets(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    # then: Alice is online over HTTP, after websockets were refused
    assert alice.state()["transport"] == "longpoll"
    assert alice.page.evaluate("window.__wsRefused") >= 1
    expect(alice.by_id("conn-text")).to_contain_text("HTTP")
    # when: they chat
    bob.open_direct_with(alice_user)
    bob.send_and_wait("Hello Alice")
    alice.open_chat("Bob")
    alice.expect_texts(["Hello Alice"])
    alice.send_and_wait("Hi Bob, over HTTP")
    bob.expect_texts(["Hello Alice", "Hi Bob, over HTTP"])
    bob.send_and_wait("Got it")
    # then: each message arrived live on the other side, once
    alice.expect_texts(["Hello Alice", "Hi Bob, over HTTP", "Got it"])
    assert alice.state()["transport"] == "longpoll"
    assert alice.state()["polls"] >= 1

    # when: the proxy lets websockets through again (and the network says so)
    alice.page.evaluate("window.__wsBlocked = false")
    alice.page.evaluate("window.__chat.retryNow()")
    # then: Alice is back on a websocket, and the chat goes on
    alice.page.wait_for_function(
        "() => window.__chat.state().transport === 'websocket' && window.__chat.state().connected",
        timeout=20_000,
    )
    expect(alice.by_id("conn-text")).to_have_text("Online")
    bob.send_and_wait("Welcome back")
    alice.expect_texts(["Hello Alice", "Hi Bob, over HTTP", "Got it", "Welcome back"])
    alice.send_and_wait("Thanks")
    bob.expect_texts(["Hello Alice", "Hi Bob, over HTTP", "Got it", "Welcome back", "Thanks"])
    # and: her link statistics reach the server: the refused websockets, the
    # long-poll and the websocket that connected
    answer = alice.page.evaluate("window.__chat.flushLinkStats()")
    assert answer["counted"] >= 3
    assert alice.errors == []
