"""Link management of the web client: failover between access endpoints, throttle
frames, and a ticket revoked under an open link."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from accounts.services.devices import logout_everywhere
from devtools.processes import ServerProcess, free_port, start_asgi_server
from messaging.models import Message
from messaging.services.conversations import direct_open
from tests.factories import PASSWORD, login_session, login_ticket, make_friends, make_user
from tests.support.browser import ChatPage, off_loop
from tests.support.chat import ws_url
from wechat_core.models import Campus, DataCenter
from wechat_core.services import campus_save

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def fast_heartbeat_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    """A server that asks for a heartbeat every second (and drops links silent for 2.5 s)."""
    server = start_asgi_server(
        log_dir=live_log_dir,
        env={**live_env, "MESSAGING_HEARTBEAT_SECONDS": "1"},
        name="daphne-heartbeat",
    )
    yield server
    server.stop()


def topology_endpoints(server: ServerProcess) -> list[list[str]]:
    campuses = httpx.get(f"{server.url}/api/topology", timeout=5).json()["campuses"]
    return [campus["endpoints"] for campus in campuses if not campus["blocked"]]


def wait_for_topology(server: ServerProcess, expected: list[list[str]]) -> None:
    """Campus changes reach every server within a second; wait until this one serves it."""
    deadline = time.monotonic() + 5
    while topology_endpoints(server) != expected:
        assert time.monotonic() < deadline, topology_endpoints(server)
        time.sleep(0.05)


def test_link__first_access_endpoint_dead__fails_over_to_the_next_and_chats(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: the local campus lists a dead endpoint first, then server 2; a blocked
    # campus lists server 1, which clients must not use
    dead = f"ws://127.0.0.1:{free_port()}/ws/sync"
    live = ws_url(asgi_servers[1])
    shanghai, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
    campus_save(
        campus=Campus(code="sh-a", datacenter=shanghai, name="SH-A", endpoints=f"{dead}\n{live}"),
        actor=None,
    )
    campus_save(
        campus=Campus(
            code="sh-b",
            datacenter=shanghai,
            name="SH-B",
            endpoints=ws_url(asgi_servers[0]),
            blocked=True,
        ),
        actor=None,
    )
    wait_for_topology(asgi_servers[0], [[dead, live]])
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    # when: both open the client served by server 1
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[0], bob_user)
    # then: they tried the dead endpoint and are connected to the live one
    for user in (alice, bob):
        state = user.state()
        assert state["endpoints"] == [dead, live]
        assert state["endpoint"] == live
        assert state["connects"] == 1
    # and: they chat
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Through the second endpoint")
    bob.open_chat("Alice")
    bob.expect_texts(["Through the second endpoint"])
    # when: Bob's link drops (the next endpoint in turn is the dead one again)
    bob.page.evaluate("window.__chat.dropLink()")
    bob.page.wait_for_function("() => window.__chat.state().connects === 2")
    # then: he is back on the live endpoint, and nothing was lost or doubled
    assert bob.state()["endpoint"] == live
    alice.send_and_wait("Still here?")
    bob.expect_texts(["Through the second endpoint", "Still here?"])


def test_link__throttle_frame__holds_sends_until_retry_after(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice in her chat with Bob
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    alice.open_direct_with(bob_user)
    # when: the server tells her to slow down for 2 seconds, and she sends at once
    throttled_at_ms = alice.page.evaluate(
        "(() => { window.__chat.injectFrame({type: 'throttle', tier: 1, retry_after: 2});"
        " return Date.now(); })()"
    )
    alice.send("Patience")
    # then: the message waits (shown as pending) and leaves only after retry_after
    expect(alice.messages().last).to_have_attribute("data-state", "pending")
    expect(alice.by_id("conn-text")).to_contain_text("sending too fast")
    expect(alice.messages().last).to_have_attribute("data-state", "sent")
    message = Message.objects.get(sender=alice_user, body__text="Patience")
    assert message.created_at.timestamp() * 1000 >= throttled_at_ms + 2000 - 50
    expect(alice.by_id("conn-text")).to_have_text("Online")


def test_link__ticket_revoked_while_connected__returns_to_the_login_screen(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice connected
    alice_user = make_user(nickname="Alice")
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    # when: all her devices are logged out (from another device)
    off_loop(logout_everywhere, ticket=login_ticket(alice_user), user_id=alice_user.pk)
    # then: the client stops reconnecting and asks her to log in again
    expect(alice.by_id("login-form")).to_be_visible()
    expect(alice.by_id("login-error")).to_contain_text("session has ended")
    assert alice.page.evaluate("localStorage.getItem('wc:session')") is None
    # and: logging in again works
    alice.fill_login(alice_user.email or "", PASSWORD)
    alice.wait_online()


def test_link__notifies_lost__heartbeat_ack_max_seq_brings_the_message(
    browser: Browser, fast_heartbeat_server: ServerProcess
) -> None:
    # given: Alice connected to a server that suggests a 1-second heartbeat, and
    # every notify to her is lost
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    bob = login_session(bob_user)
    chat = direct_open(ticket=bob.ticket, user_id=bob_user.pk, peer_id=alice_user.pk)
    alice = ChatPage.login(browser, fast_heartbeat_server, alice_user)
    assert alice.state()["heartbeat"] == 1
    alice.page.evaluate("window.__chat.loseNotifies()")
    # when: Bob sends her a message (over HTTP)
    response = httpx.post(
        f"{fast_heartbeat_server.url}/api/messaging/send",
        headers=bob.headers,
        json={"conversation": chat.pk, "client_msg_id": "hb-1", "content": {"text": "Ping"}},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    # then: her next heartbeat's max_seq tells her to sync, and the message arrives
    expect(alice.chat_item("Bob").get_by_test_id("chat-item-preview")).to_have_text("Ping")
    alice.open_chat("Bob")
    alice.expect_texts(["Ping"])
    alice.page.wait_for_function("() => window.__chat.state().notifiesIgnored >= 1")
    # and: heartbeats keep the link alive (the server drops links silent for 2.5 s)
    alice.page.wait_for_function("() => window.__chat.state().heartbeats >= 4")
    assert alice.state()["connects"] == 1
