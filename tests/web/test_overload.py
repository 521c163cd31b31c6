"""The web client obeys an overloaded server (issue 13; docs/protocol.md §2 and §6,
docs/overload.md): a connection FastReject refuses (a `throttle` frame with `id`
null, then close 4013) is shown as paused, is not tried again before
`retry_after`, whatever the user does, comes back by itself once the server is
no longer overloaded, and what was written meanwhile is delivered once. The pause
outlives a reload of the page (the impatient user's retry). Behind a proxy that
blocks websockets, on the HTTP long-poll, a refused poll pauses the client in the
same way, and a websocket the client tries meanwhile that is refused is not taken
for the way back to websockets.

The server is a daphne with one worker slot, made overloaded by a flood of sends
(tests/support/overload.py). Chromium itself tells when each websocket handshake
and each HTTP request of the link left and when each frame and refusal arrived
(DevTools' Network events, on the browser's clock), so the waits are measured
where they happen."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, expect

from accounts.models import User
from devtools.processes import ServerProcess
from messaging.models import Message
from messaging.services.conversations import direct_open
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from tests.factories import login_ticket, make_friends, make_user
from tests.support.browser import ChatPage, off_loop
from tests.support.overload import SendFlood, small_server_start
from tests.support.waiting import eventually

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


# The link's own HTTP requests (docs/protocol.md §5): the polls and the sends.
LINK_PATHS = {"/api/messaging/sync", "/api/messaging/send"}


@pytest.fixture(scope="module")
def small_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    # The default threshold (100 ms): the pages' own loads stay below it, a flood of
    # one slot goes far above. One for the module: a flood's overload is gone about a
    # second after it stops.
    server = small_server_start(
        env=live_env, log_dir=live_log_dir, name="overload-web", threshold_ms=100
    )
    yield server
    server.stop()


@dataclass(frozen=True)
class Refusal:
    at: float  # the browser's monotonic clock, seconds
    retry_after: float
    frame: dict[str, Any]


class Handshakes:
    """Every websocket handshake a page sends and every connection refusal it gets,
    timed by Chromium (Network.webSocketWillSendHandshakeRequest / FrameReceived);
    and every HTTP request of the link (LINK_PATHS) and its refusals (429, 503),
    timed the same way (Network.requestWillBeSent / responseReceived)."""

    def __init__(self, chat: ChatPage) -> None:
        self.started: list[float] = []
        self.refusals: list[Refusal] = []
        self.requests: list[float] = []
        self.http_refusals: list[Refusal] = []
        session = chat.context.new_cdp_session(chat.page)
        session.on("Network.webSocketWillSendHandshakeRequest", self._handshake)
        session.on("Network.webSocketFrameReceived", self._frame)
        session.on("Network.requestWillBeSent", self._request)
        session.on("Network.responseReceived", self._response)
        session.send("Network.enable")

    def _handshake(self, event: dict[str, Any]) -> None:
        self.started.append(float(event["timestamp"]))

    def _request(self, event: dict[str, Any]) -> None:
        if urlsplit(event["request"]["url"]).path in LINK_PATHS:
            self.requests.append(float(event["timestamp"]))

    def _response(self, event: dict[str, Any]) -> None:
        response = event["response"]
        if urlsplit(response["url"]).path not in LINK_PATHS or response["status"] not in (429, 503):
            return
        headers = {name.lower(): value for name, value in response["headers"].items()}
        retry_after = float(headers["retry-after"])
        frame = {"status": response["status"], "url": response["url"]}
        self.http_refusals.append(Refusal(float(event["timestamp"]), retry_after, frame))

    def _frame(self, event: dict[str, Any]) -> None:
        try:
            frame = json.loads(event["response"]["payloadData"])
        except (KeyError, ValueError):
            return
        if isinstance(frame, dict) and frame.get("type") == "throttle" and frame.get("id") is None:
            self.refusals.append(Refusal(float(event["timestamp"]), frame["retry_after"], frame))

    def during(self, start: float, end: float) -> list[float]:
        return [at for at in self.started if start < at < end]

    def after(self, start: float) -> list[float]:
        return [at for at in self.started if at > start]

    def requests_during(self, start: float, end: float) -> list[float]:
        """HTTP requests of the link, and websocket handshakes, in (start, end)."""
        return [at for at in [*self.requests, *self.started] if start < at < end]


def refused_at_connect(chat: ChatPage, handshakes: Handshakes, timeout: float = 120.0) -> None:
    """Drop the page's link (as a lost network would) until a reconnect is refused."""
    deadline = time.monotonic() + timeout
    while not handshakes.refusals:
        assert time.monotonic() < deadline, "no reconnect was refused"
        connects = chat.state()["connects"]
        chat.page.evaluate("window.__chat.dropLink()")
        # Refused (told to stay away), or let in this time: then drop it again.
        chat.page.wait_for_function(
            """(connects) => {
                const s = window.__chat.state();
                return s.stoppedUntil > Date.now() || (s.connected && s.connects > connects);
            }""",
            arg=connects,
            timeout=30_000,
        )


def test_web_client__refused_at_connect_as_overloaded__waits_then_reconnects_by_itself(
    browser: Browser, small_server: ServerProcess, tmp_path: Path
) -> None:
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    # given: Alice and Bob chatting on a server that is not overloaded yet
    alice = ChatPage.login(browser, small_server, alice_user)
    bob = ChatPage.login(browser, small_server, bob_user)
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Before the overload")
    bob.open_chat("Alice")
    bob.expect_texts(["Before the overload"])
    handshakes = Handshakes(alice)
    with SendFlood(small_server) as flood:
        # when: the server is overloaded (it refuses sends: connections, one class
        # below, are refused too) and Alice's link drops
        flood.wait_refused(5)
        refused_at_connect(alice, handshakes)
        # then: her client says the server paused it
        expect(alice.by_id("conn-state")).to_have_attribute("data-state", "paused")
        expect(alice.by_id("conn-text")).to_contain_text("Paused by the server")
        # when: she writes meanwhile, reloads the page (impatient), and asks to
        # reconnect now (as when the network comes back)
        alice.send("Written while refused")
        expect(alice.messages().last).to_have_attribute("data-state", "pending")
        alice.page.reload()
        expect(alice.by_id("conn-state")).to_have_attribute("data-state", "paused")
        alice.page.evaluate("window.__chat.retryNow()")
        alice.page.evaluate("window.dispatchEvent(new Event('online'))")
    # and: the overload ends (the flood stops)

    # then: she comes back by herself
    alice.wait_online(timeout=60_000)
    alice.open_chat("Bob")
    expect(alice.messages().last).to_have_attribute("data-state", "sent")
    # and: no handshake left between a refusal and its retry_after (the server's
    # figure; the client adds up to half as much at random)
    first = handshakes.refusals[0]
    assert first.frame["reason"] == "overloaded"
    assert first.retry_after >= 1
    for refusal in handshakes.refusals:
        early = handshakes.during(refusal.at, refusal.at + refusal.retry_after)
        assert early == [], (refusal, handshakes.started)
    # and: one came after each refusal (she reconnected on her own)
    assert handshakes.after(handshakes.refusals[-1].at)
    # and: what she wrote meanwhile reaches Bob, once
    bob.expect_texts(["Before the overload", "Written while refused"], timeout=60_000)
    assert Message.objects.filter(body__text="Written while refused").count() == 1
    alice.screenshot(tmp_path, "alice-after-overload")
    assert alice.errors == bob.errors == []


def seen(chat: ChatPage, handshakes: Handshakes) -> Handshakes:
    """`handshakes` with what Chromium told so far (its events reach the test only
    while the test talks to the browser)."""
    chat.page.evaluate("0")
    return handshakes


def answered(chat: ChatPage, traffic: Handshakes, polls: int) -> bool:
    """A poll after the `polls`-th was answered, or refused."""
    return bool(seen(chat, traffic).http_refusals) or int(chat.state()["polls"]) > polls


def write_to(sender: User, recipient: User, text: str) -> None:
    """`sender` writes to `recipient` from elsewhere (the service, as another device)."""
    ticket = login_ticket(sender)
    chat = direct_open(ticket=ticket, user_id=sender.pk, peer_id=recipient.pk).pk
    content = OutgoingContent(kind="text", text=text)
    off_loop(
        message_send,
        ticket=ticket,
        user_id=sender.pk,
        conversation_id=chat,
        client_msg_id=uuid.uuid4().hex,
        content=content,
    )


def test_web_client_on_the_long_poll__poll_refused_as_overloaded__waits_then_polls_by_itself(
    browser: Browser, small_server: ServerProcess
) -> None:
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    # given: Alice behind a proxy that blocks websockets, on the HTTP long-poll
    alice = ChatPage.login_without_websockets(browser, small_server, alice_user)
    assert alice.state()["transport"] == "longpoll"
    traffic = Handshakes(alice)
    written: list[str] = []
    with SendFlood(small_server) as flood:
        # when: the server is overloaded, and Bob writes to her until a poll of
        # hers (the next one after each answer) is refused
        flood.wait_refused(5)
        while not traffic.http_refusals:
            assert len(written) < 20, "no poll was refused"
            polls = alice.state()["polls"]
            written.append(f"Written during the overload {len(written) + 1}")
            write_to(bob_user, alice_user, written[-1])
            eventually(partial(answered, alice, traffic, polls), timeout=30, what="an answer")
        # then: her client says the server paused it, and a reload keeps the pause
        expect(alice.by_id("conn-state")).to_have_attribute("data-state", "paused")
        alice.page.reload()
        expect(alice.by_id("conn-state")).to_have_attribute("data-state", "paused")
    # and: the overload ends (the flood stops)

    # then: she is back over HTTP by herself, with everything Bob wrote, once
    alice.wait_online(timeout=60_000)
    assert alice.state()["transport"] == "longpoll"
    alice.open_chat("Bob")
    alice.expect_texts(written, timeout=60_000)
    # and: nothing of the link left between a refusal and its retry_after (the
    # server's figure; the client adds up to half as much at random)
    first = traffic.http_refusals[0]
    assert first.frame["status"] == 503
    assert first.retry_after >= 1
    for refusal in traffic.http_refusals:
        early = traffic.requests_during(refusal.at, refusal.at + refusal.retry_after)
        assert early == [], (refusal, traffic.requests)
    assert alice.errors == []
