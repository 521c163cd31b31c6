"""Headless Chromium (Debian's, never a downloaded one) driving the web client.

    def test_x(browser, asgi_servers):
        alice = ChatPage.login(browser, asgi_servers[0], make_user(nickname="Alice"))
        alice.open_chat("Bob")
        alice.send("hi")

`chromium` is one browser per test module; `browser` hands it to a test and, at
the end of the test, waits until every page has its requests answered and
closes every context, so no client is still writing to the database while the
test database is flushed (a TRUNCATE racing a live transaction can deadlock).
A failed test leaves a screenshot of each page in its tmp_path.

Each user gets their own browser context (their own localStorage, so their own
device). While Playwright's sync API runs, the test thread has a running asyncio
loop, and Django refuses ORM calls from such a thread; `chromium` therefore
sets DJANGO_ALLOW_ASYNC_UNSAFE for as long as the browser lives, and only after
the live servers' environment was captured, so the servers keep Django's check.
For the same reason async_to_sync (the channel layer: notifications, revocation
pushes) fails in the test thread; services whose pushes a test relies on run
through `off_loop`.

Pages run under the Content-Security-Policy, which forbids `eval`: predicates
given to `wait_for_function` are functions (`"() => ..."`), which Playwright
evaluates once, not expressions it would evaluate again on every poll.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.db import connection
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from accounts.models import User
from devtools.processes import ServerProcess
from tests.factories import PASSWORD

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
# No outside network here: without these, Chromium keeps dialling Google services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
# Reconnecting after the network returns may wait out a backoff delay (at most 10 s).
RECONNECT_TIMEOUT_MS = 20_000

# Before any of the page's scripts: every websocket fails as a blocking proxy makes
# it fail (closed, 1006, never open) while `window.__wsBlocked` holds.
BLOCK_WEBSOCKETS = """
(() => {
  const Real = window.WebSocket;
  window.__wsBlocked = true;
  window.__wsRefused = 0;
  class Blocked extends EventTarget {
    constructor(url, protocols) {
      if (!window.__wsBlocked) return new Real(url, protocols);
      super();
      window.__wsRefused += 1;
      this.url = url;
      this.readyState = 0;
      this.protocol = "";
      setTimeout(() => {
        this.readyState = 3;
        if (this.onerror) this.onerror(new Event("error"));
        if (this.onclose) this.onclose({ code: 1006, reason: "", wasClean: false });
      }, 30);
    }
    send() { throw new Error("not open"); }
    close() { this.readyState = 3; }
  }
  Object.assign(Blocked, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = Blocked;
})();
"""


def launch_browser(playwright: Playwright) -> Browser:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium).")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def chromium(live_env: dict[str, str]) -> Iterator[Browser]:
    """One Chromium per test module (see the module docstring for the ORM switch)."""
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in live_env, "the servers must keep Django's check"
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Generous: a passing expectation returns as soon as it holds, and on a busy
    # two-core machine rendering the API reference (ReDoc over the whole schema) took
    # over 10 s.
    expect.set_options(timeout=30_000)
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser(chromium: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    """The module's Chromium for one test; its contexts close when the test ends."""
    yield chromium
    report = getattr(request.node, "rep_call", None)
    contexts = list(chromium.contexts)
    for index, context in enumerate(contexts):
        for number, page in enumerate(context.pages):
            if report is not None and report.failed:
                page.screenshot(path=str(tmp_path / f"failure-{index}-{number}.png"))
            settle(page)
    for context in contexts:
        context.close()


def settle(page: Page, timeout: float = 5_000) -> None:
    """Let the client's requests be answered, then stop it (best effort)."""
    with contextlib.suppress(PlaywrightError):
        page.wait_for_function(
            "() => !window.__chat || window.__chat.state().busy === 0", timeout=timeout
        )
        page.evaluate("window.__chat && window.__chat.shutdown()")


def off_loop(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `function` in a worker thread, away from Playwright's event loop, so
    that what it pushes through the channel layer reaches the servers."""

    def call() -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result(timeout=60)


@dataclass
class ChatPage:
    """One user's web client in its own browser context."""

    user: User
    context: BrowserContext
    page: Page
    server: ServerProcess
    errors: list[str]

    # --- Starting -----------------------------------------------------------------

    @classmethod
    def open(cls, browser: Browser, server: ServerProcess, user: User) -> ChatPage:
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        context.set_default_timeout(10_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}/")
        return cls(user=user, context=context, page=page, server=server, errors=errors)

    @classmethod
    def login(
        cls, browser: Browser, server: ServerProcess, user: User, *, password: str = PASSWORD
    ) -> ChatPage:
        chat = cls.open(browser, server, user)
        chat.fill_login(user.email or user.phone or "", password)
        chat.wait_online()
        return chat

    def fill_login(self, identifier: str, password: str) -> None:
        self.by_id("login-identifier").fill(identifier)
        self.by_id("login-password").fill(password)
        self.by_id("login-submit").click()

    def another_device(self, browser: Browser) -> ChatPage:
        """The same user logged in from a second browser (a second device)."""
        return ChatPage.login(browser, self.server, self.user)

    def close(self) -> None:
        self.context.close()

    @classmethod
    def login_without_websockets(
        cls, browser: Browser, server: ServerProcess, user: User
    ) -> ChatPage:
        """Logged in behind a proxy that refuses websockets (BLOCK_WEBSOCKETS; the page
        lets them through again with `window.__wsBlocked = false`): the client chats
        over the HTTP long-poll."""
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        context.set_default_timeout(10_000)
        context.add_init_script(BLOCK_WEBSOCKETS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}/")
        chat = cls(user=user, context=context, page=page, server=server, errors=errors)
        chat.fill_login(user.email or user.phone or "", PASSWORD)
        chat.wait_online()
        return chat

    # --- Looking -------------------------------------------------------------------

    def by_id(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    def state(self) -> dict[str, Any]:
        return dict(self.page.evaluate("window.__chat.state()"))

    def wait_online(self, timeout: float = RECONNECT_TIMEOUT_MS) -> None:
        self.page.wait_for_function(
            "() => window.__chat && window.__chat.state().connected", timeout=timeout
        )
        expect(self.by_id("conn-state")).to_have_attribute("data-state", "online")

    def chat_item(self, title: str) -> Locator:
        return self.by_id("chat-item").filter(
            has=self.page.get_by_test_id("chat-item-name").get_by_text(title, exact=True)
        )

    def messages(self) -> Locator:
        """Every message row of the open chat, in display order."""
        return self.by_id("message-list").get_by_test_id("message")

    def message_texts(self) -> Locator:
        return self.by_id("message-list").get_by_test_id("message-text")

    def expect_texts(self, texts: list[str], timeout: float = RECONNECT_TIMEOUT_MS) -> None:
        """The open chat shows exactly these texts, each once, in this order."""
        expect(self.message_texts()).to_have_text(texts, timeout=timeout)

    def screenshot(self, directory: Path, name: str) -> Path:
        path = directory / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    # --- Doing -----------------------------------------------------------------------

    def show_chats(self) -> None:
        self.by_id("nav-chats").click()

    def show_contacts(self) -> None:
        self.by_id("nav-contacts").click()

    def open_chat(self, title: str) -> None:
        self.show_chats()
        self.chat_item(title).click()
        expect(self.by_id("chat-title")).to_have_text(title)

    def open_direct_with(self, friend: User) -> None:
        """Contacts → the friend → Send message."""
        self.show_contacts()
        self.page.locator(f'[data-testid=friend-item][data-user-id="{friend.pk}"]').click()
        self.by_id("friend-message-button").click()
        expect(self.by_id("chat-title")).to_have_text(friend.nickname)

    def create_group(self, name: str, members: list[User]) -> None:
        self.show_chats()
        self.by_id("new-group-button").click()
        dialog = self.by_id("group-dialog")
        dialog.get_by_test_id("group-name").fill(name)
        for member in members:
            dialog.locator(
                f'[data-testid=group-member-option][data-user-id="{member.pk}"] input'
            ).check()
        dialog.get_by_test_id("group-create").click()
        expect(self.by_id("chat-title")).to_have_text(name)

    def send(self, text: str) -> None:
        self.by_id("composer-input").fill(text)
        self.by_id("composer-send").click()

    def send_and_wait(self, text: str) -> None:
        """Send and wait for the server's ack (the message leaves the outbox)."""
        self.send(text)
        expect(self.messages().last).to_have_attribute("data-state", "sent")
        self.page.wait_for_function("() => window.__chat.state().outbox === 0")

    def go_offline(self) -> None:
        """Lose the network: no new connection succeeds and the open socket dies."""
        self.context.set_offline(True)
        self.page.evaluate("window.__chat.dropLink()")
        self.page.wait_for_function("() => !window.__chat.state().connected")
        expect(self.by_id("conn-state")).not_to_have_attribute("data-state", "online")

    def go_online(self) -> None:
        self.context.set_offline(False)
        self.wait_online()

    def reload(self) -> None:
        self.page.reload()
        self.wait_online()
