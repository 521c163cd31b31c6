"""The web client on the HTTP long-poll does not take a refused websocket for the
way back (docs/protocol.md §5, "Refusals over HTTP"; docs/overload.md): a
websocket that opens and is then refused as overloaded (a `throttle` frame, then
close 4013) keeps the client on the long-poll, with no new poll, probe, link
statistics or background refresh of the contacts before the refusal's
`retry_after`, and it tries a websocket again only then; once websockets say
`hello` again it goes back to them.

Alice's access endpoint (her campus's, in the topology) is a websocket proxy run
by the test in front of the live server: while it refuses, it answers every
upgrade with FastReject's refusal itself, deterministically, and notes when each
upgrade arrived and each refusal left, on the test's clock; while it accepts, it
relays frames to the live server. Her HTTP requests go to the live server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Request, expect
from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Origin, Subprotocol

from accounts.services.contacts import friend_request_send
from devtools.processes import ServerProcess
from messaging.client import SUBPROTOCOL
from messaging.models import Message
from messaging.services.conversations import direct_open
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from tests.factories import login_ticket, make_friends, make_user
from tests.support.browser import ChatPage, off_loop
from tests.support.chat import ws_url
from tests.support.waiting import eventually
from wechat_core.models import Campus, DataCenter
from wechat_core.services import campus_save

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

RETRY_AFTER = 3.0  # the refusals' retry_after: long enough for a message to arrive within it
LEARNT_WITHIN = 0.25  # seconds from the proxy's refusal to the page knowing it
REFUSAL = {
    "type": "throttle",
    "id": None,
    "reason": "overloaded",
    "code": "overloaded",
    "message": "The server is overloaded: try again later.",
    "tier": 2,
    "retry_after": RETRY_AFTER,
}


class RefusingProxy:
    """A websocket access endpoint in front of `upstream`, in a thread of its own:
    refusing every upgrade as an overloaded server does, or (`accepting`) relaying
    frames both ways, refusing the next `refuse_receipts` receipt frames itself as an
    overloaded server does (a `throttle` answering the frame's id)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.accepting = False
        self.retry_after = RETRY_AFTER  # of the refusals it sends
        self.refuse_receipts = 0
        self.upgrades: list[float] = []  # when each upgrade arrived (time.monotonic)
        self.refusals: list[float] = []  # when each refusal frame left
        self.receipts: list[dict[str, Any]] = []  # receipt frames relayed to the server
        self.receipts_refused: list[dict[str, Any]] = []
        self.counted: list[int] = []  # the `counted` of each receipt.ack relayed back
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: Server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(
            10
        )
        port = self._server.sockets[0].getsockname()[1] if self._server.sockets else 0
        self.url = f"ws://127.0.0.1:{port}/ws/sync"

    async def _start(self) -> Server:
        return await serve(self._handle, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)])

    async def _handle(self, browser: ServerConnection) -> None:
        self.upgrades.append(time.monotonic())
        if not self.accepting:
            await browser.send(json.dumps({**REFUSAL, "retry_after": self.retry_after}))
            self.refusals.append(time.monotonic())
            await browser.close(4013, "overloaded")
            return
        headers = browser.request.headers if browser.request else {}
        offered = [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",")]
        origin = headers.get("Origin")
        async with connect(
            self.upstream,
            subprotocols=[Subprotocol(p) for p in offered if p],
            origin=Origin(origin) if origin else None,
        ) as server:
            await relay(browser, server, self._to_server, self._to_browser)

    async def _to_server(self, browser: Connection, raw: str | bytes) -> bool:
        """Whether to relay this frame of the browser's (a refused receipt is not)."""
        frame = json.loads(raw)
        if frame.get("type") != "receipt":
            return True
        if self.refuse_receipts > 0:
            self.refuse_receipts -= 1
            self.receipts_refused.append(frame)
            refusal = {**REFUSAL, "id": frame["id"], "retry_after": self.retry_after}
            await browser.send(json.dumps(refusal))
            return False
        self.receipts.append(frame)
        return True

    async def _to_browser(self, browser: Connection, raw: str | bytes) -> bool:
        frame = json.loads(raw)
        if frame.get("type") == "receipt.ack":
            self.counted.append(int(frame["counted"]))
        return True

    def receipted(self) -> list[int]:
        """The message ids of every receipt relayed to the server, in order."""
        return [m["id"] for frame in self.receipts for m in frame["messages"]]

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


Inspect = Callable[[Connection, str | bytes], Awaitable[bool]]


async def relay(
    browser: Connection, server: Connection, to_server: Inspect, to_browser: Inspect
) -> None:
    """Frames both ways until either side closes; the other is then closed too. Each
    frame is relayed when its side's `inspect(browser, frame)` says so."""

    async def pipe(source: Connection, target: Connection, inspect: Inspect) -> None:
        async for frame in source:
            if await inspect(browser, frame):
                await target.send(frame)

    tasks = [
        asyncio.create_task(pipe(browser, server, to_server)),
        asyncio.create_task(pipe(server, browser, to_browser)),
    ]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for side in (browser, server):
        await side.close()


@pytest.fixture
def proxy(asgi_servers: list[ServerProcess]) -> Iterator[RefusingProxy]:
    """The proxy, published as the only access endpoint of the server's campus."""
    server = asgi_servers[0]
    refusing = RefusingProxy(ws_url(server))
    here = httpx.get(f"{server.url}/api/topology", timeout=10).json()
    datacenter, _ = DataCenter.objects.get_or_create(code=here["datacenter"])
    campus = Campus(code=here["campus"], datacenter=datacenter, name=here["campus"].upper())
    campus.endpoints = refusing.url
    campus_save(campus=campus, actor=None, reason="test: a refusing proxy")
    eventually(partial(lists_only, server, refusing.url), timeout=30, what="the proxy listed")
    yield refusing
    # The servers outlive this test: publish no endpoint again before the tables go.
    campus.endpoints = ""
    campus_save(campus=campus, actor=None, reason="test: proxy gone")
    eventually(partial(lists_only, server, None), timeout=30, what="the proxy unlisted")
    refusing.close()


def lists_only(server: ServerProcess, url: str | None) -> bool:
    campuses = httpx.get(f"{server.url}/api/topology", timeout=10).json()["campuses"]
    return [e for c in campuses for e in c["endpoints"]] == ([url] if url else [])


def write_to(sender_ticket: object, sender_id: int, chat: int, text: str) -> None:
    """Bob writes from another device (the service, off Playwright's loop)."""
    content = OutgoingContent(kind="text", text=text)
    off_loop(
        message_send,
        ticket=sender_ticket,
        user_id=sender_id,
        conversation_id=chat,
        client_msg_id=uuid.uuid4().hex,
        content=content,
    )


def probed(chat: ChatPage, proxy: RefusingProxy, refusals: int) -> bool:
    """Whether the proxy refused more than `refusals` upgrades; if not, ask the page
    to reconnect now, as an impatient user or a flapping network does."""
    if len(proxy.refusals) > refusals:
        return True
    chat.page.evaluate("window.__chat.retryNow(); window.dispatchEvent(new Event('online'))")
    return False


class Requests:
    """When each of a page's HTTP requests to `paths` left, as the test sees it (a
    little late: Playwright tells while the test talks to the browser), by path."""

    def __init__(self, chat: ChatPage, *paths: str) -> None:
        self.chat = chat
        self.at: dict[str, list[float]] = {path: [] for path in paths}
        chat.page.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        path = urlsplit(request.url).path
        if path in self.at:
            self.at[path].append(time.monotonic())

    def after(self, path: str, start: float) -> list[float]:
        self.chat.page.evaluate("0")  # take in what Chromium has told so far
        return [at for at in self.at[path] if at > start]


CONTACTS = "/api/contacts/friends"
STATS = "/api/messaging/link-stats"
SYNC = "/api/messaging/sync"


def test_long_poll__websockets_refused_as_overloaded__stays_on_http__back_once_they_say_hello(
    browser: Browser, asgi_servers: list[ServerProcess], proxy: RefusingProxy
) -> None:
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    carol_user = make_user(nickname="Carol")
    make_friends(alice_user, bob_user)
    bob_ticket = login_ticket(bob_user)
    chat = direct_open(ticket=bob_ticket, user_id=bob_user.pk, peer_id=alice_user.pk).pk
    # given: Alice on the HTTP long-poll (her websockets blocked at first)
    alice = ChatPage.login_without_websockets(browser, asgi_servers[0], alice_user)
    assert alice.state()["transport"] == "longpoll"
    requests = Requests(alice, CONTACTS, STATS, SYNC)
    # when: websockets get through to her access endpoint, which refuses every one
    # as overloaded, and she keeps asking to reconnect now
    alice.page.evaluate("window.__wsBlocked = false")
    written: list[str] = []
    for attempt in range(2):
        eventually(partial(probed, alice, proxy, attempt), timeout=30, what="a probe refused")
        refused_at = proxy.refusals[-1]
        # and: the link statistics are due (the minute's timer) during the pause
        deferred = alice.page.evaluate(
            """() => {
                const paused = window.__chat.state().stoppedUntil > Date.now();
                return window.__chat.flushLinkStats().then((answer) => ({ paused, answer }));
            }"""
        )
        assert deferred == {"paused": True, "answer": {"counted": 0, "deferred": True}}
        # and: meanwhile Bob writes to her (the first time), Carol asks to be her
        # friend (the second): the poll in flight brings it, in the pause
        polls = alice.state()["polls"]
        if attempt == 0:
            written.append("Written during a refusal")
            write_to(bob_ticket, bob_user.pk, chat, written[-1])
        else:
            off_loop(
                friend_request_send,
                ticket=login_ticket(carol_user),
                user_id=carol_user.pk,
                to_user_id=alice_user.pk,
            )
        alice.page.wait_for_function(
            """(polls) => {
                const s = window.__chat.state();
                return s.polls > polls || s.transport !== "longpoll";
            }""",
            arg=polls,
            timeout=20_000,
        )
        # then: she is still online over HTTP, having never left the long-poll
        state = alice.state()
        assert (state["transport"], state["connected"], state["fallbacks"]) == ("longpoll", True, 1)
        assert time.monotonic() < refused_at + RETRY_AFTER, "the entry came after the pause"

    # and: Carol's request shows once the pause is over (the contacts are asked then)
    eventually(
        partial(requests.after, CONTACTS, proxy.refusals[-1]), timeout=30, what="contacts asked"
    )

    # then: no websocket upgrade, poll, statistics or contacts left during a
    # refusal's pause (the server's retry_after: the client adds up to half as much)
    for refusal in proxy.refusals:
        # (from when the refusal can have reached her page: a request it had already
        # sent when the proxy refused, 35 ms after in one full run, is not early)
        pause = (refusal + LEARNT_WITHIN, refusal + RETRY_AFTER)
        early = [at for at in proxy.upgrades if pause[0] < at < pause[1]]
        assert early == [], (refusal, proxy.upgrades)
        for path in (SYNC, CONTACTS):
            early = [at for at in requests.after(path, pause[0]) if at < pause[1]]
            assert early == [], (path, refusal, requests.at[path])
    assert len(proxy.upgrades) == len(proxy.refusals) == 2  # one probe at a time
    assert requests.at[STATS] == []

    # when: the endpoint lets websockets through again, and she asks once more
    proxy.accepting = True
    alice.page.wait_for_function(
        """() => {
            window.__chat.retryNow();
            const s = window.__chat.state();
            return s.transport === "websocket" && s.connected;
        }""",
        timeout=30_000,
        polling=200,
    )
    # then: she is back on a websocket, with what Bob wrote, once, and the chat goes on
    assert proxy.upgrades[2] >= proxy.refusals[-1] + RETRY_AFTER
    alice.open_chat("Bob")
    alice.expect_texts(written)
    alice.send_and_wait("Back on the websocket")
    assert Message.objects.filter(body__text="Back on the websocket").count() == 1
    # and: the statistics kept during the pauses go now
    answer = alice.page.evaluate("window.__chat.flushLinkStats()")
    assert answer["counted"] >= 2  # at least the long-poll and the websocket connects
    assert alice.errors == []


def test_long_poll__probe_refused__says_the_server_is_busy__holds_a_send_then_sends_it_once(
    browser: Browser, asgi_servers: list[ServerProcess], proxy: RefusingProxy
) -> None:
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    proxy.retry_after = 15.0  # long enough to look at the page in the pause
    # given: Alice on the HTTP long-poll, in her chat with Bob
    alice = ChatPage.login_without_websockets(browser, asgi_servers[0], alice_user)
    alice.open_direct_with(bob_user)
    # when: a websocket she tries is refused as overloaded (then they are blocked again)
    alice.page.evaluate("window.__wsBlocked = false")
    eventually(partial(probed, alice, proxy, 0), timeout=30, what="a probe refused")
    alice.page.evaluate("window.__wsBlocked = true")
    # then: her status bar says the server is busy and when she retries, not that she
    # is online and sending too fast (nor offline, nor connecting)
    expect(alice.by_id("conn-state")).to_have_attribute("data-state", "paused")
    expect(alice.by_id("conn-text")).to_contain_text("Server busy · retrying in")
    # when: she writes meanwhile
    alice.send("Written in the pause")
    # then: it waits, shown as waiting for a busy server, and nothing left in the pause
    pending = alice.messages().last
    expect(pending).to_have_attribute("data-state", "pending")
    expect(pending.get_by_test_id("message-status")).to_have_attribute(
        "title", "Waiting: the server is busy"
    )
    held = alice.page.evaluate(
        "() => { const s = window.__chat.state(); return [s.stoppedUntil > Date.now(), s.outbox]; }"
    )
    assert held[1] == 1 or not held[0], "sent in the pause"
    # and: once the pause is over it goes over HTTP, once, and she is online again
    alice.page.wait_for_function("() => window.__chat.state().outbox === 0", timeout=90_000)
    expect(alice.by_id("conn-state")).to_have_attribute("data-state", "online")
    expect(alice.by_id("conn-text")).to_have_text("Online · over HTTP (websockets blocked)")
    assert alice.state()["transport"] == "longpoll"
    expect(alice.messages().last).to_have_attribute("data-state", "sent")
    assert Message.objects.filter(body__text="Written in the pause").count() == 1
    assert alice.errors == []


# The page's HTTP syncs fail (as on a network that lets only the websocket through)
# while `window.__syncBlocked` holds.
BLOCK_SYNC = """() => {
    const real = window.fetch;
    window.__syncBlocked = true;
    window.fetch = (url, options) => window.__syncBlocked && String(url).startsWith(SYNC)
        ? Promise.reject(new TypeError("blocked"))
        : real(url, options);
}""".replace("SYNC", json.dumps(SYNC))


def test_receipts__one_refused_then_a_refused_reconnect__each_reported_once_right_after(
    browser: Browser, asgi_servers: list[ServerProcess], proxy: RefusingProxy
) -> None:
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    bob_ticket = login_ticket(bob_user)
    chat = direct_open(ticket=bob_ticket, user_id=bob_user.pk, peer_id=alice_user.pk).pk
    # given: Alice on a websocket through her access endpoint, which relays
    proxy.accepting = True
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    assert alice.state()["endpoint"] == proxy.url
    # when: Bob writes to her, and her receipt for it is refused as overloaded
    proxy.refuse_receipts = 1
    write_to(bob_ticket, bob_user.pk, chat, "First")
    first = Message.objects.get(body__text="First").pk
    # then: she reports it again after the refusal's retry_after (it was not lost)
    eventually(lambda: first in proxy.receipted(), timeout=60, what="the receipt again")
    assert [m["id"] for f in proxy.receipts_refused for m in f["messages"]] == [first]
    # when: her link drops, and her reconnect is refused as overloaded (tier 2); HTTP
    # fails meanwhile, so that she does not fall back to the long-poll instead
    proxy.accepting = False
    refusals = len(proxy.refusals)
    alice.page.evaluate(BLOCK_SYNC)
    alice.page.evaluate("window.__chat.dropLink()")
    eventually(lambda: len(proxy.refusals) > refusals, timeout=30, what="the reconnect refused")
    # and: Bob writes meanwhile, then her endpoint lets her in again
    write_to(bob_ticket, bob_user.pk, chat, "Second")
    second = Message.objects.get(body__text="Second").pk
    heartbeats = alice.state()["heartbeats"]
    alice.page.evaluate("window.__syncBlocked = false")
    proxy.accepting = True
    # then: once back, she reports it at a receipt tick of the new link, not after
    # its first heartbeat (30 s) says the tier is 0 again
    alice.page.wait_for_function(
        """(beats) => {
            const s = window.__chat.state();
            return (s.connected && s.receiptsSent >= 2) || s.heartbeats > beats;
        }""",
        arg=heartbeats,
        timeout=120_000,
    )
    state = alice.state()
    assert (state["receiptsSent"], state["heartbeats"]) == (2, heartbeats)
    # and: each message was reported once, and counted once
    assert proxy.receipted() == [first, second]
    assert sum(proxy.counted) == 2
    assert alice.errors == []
