"""Screenshots of the main screens, for the README (docs/screenshots/*.png).

Run against the embedded demo (`make run`, whose demo logins are published):

    make run PORT=8000 &
    .venv/bin/python -m devtools.screenshots --url http://127.0.0.1:8000

It drives Debian's Chromium (never a downloaded one) as people would: Alice logs
in, opens her chat with Bob and writes to him, looks at her contacts and wallet,
on a desktop, on a phone, in Chinese and in dark mode; the operator looks at the
monitoring overview; Bob at his official account's console. It sends a message
(to the demo database only) when the chat has fewer than two, so it is not empty.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ALICE = ("alice@example.com", "alice-demo-2026")
BOB = ("bob@example.com", "bob-demo-2026")
OPERATOR = ("ops@example.com", "ops-demo-2026")
OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def chat_page(
    browser: Browser,
    url: str,
    *,
    viewport: dict[str, int] = DESKTOP,
    language: str = "en",
    dark: bool = False,
) -> Page:
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        color_scheme="dark" if dark else "light",
        locale="zh-CN" if language == "zh-Hans" else "en-US",
    )
    context.add_init_script(f"localStorage.setItem('webclient.language', '{language}')")
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{url}/")
    return page


def log_in(page: Page, login: tuple[str, str]) -> None:
    page.get_by_test_id("login-identifier").fill(login[0])
    page.get_by_test_id("login-password").fill(login[1])
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("conn-state")).to_have_attribute(
        "data-state", "online", timeout=30_000
    )


def open_chat(page: Page, title: str) -> None:
    """Contacts → the friend → Send message: opens the 1:1 chat, new or not."""
    page.get_by_test_id("nav-contacts").click()
    friend = page.get_by_test_id("friend-item").filter(has_text=title).first
    expect(friend).to_be_visible(timeout=60_000)
    friend.click()
    page.get_by_test_id("friend-message-button").click()
    expect(page.get_by_test_id("chat-title")).to_have_text(title)
    # the history loads after the chat opens
    expect(page.locator(".message-list .loading")).to_be_hidden(timeout=60_000)


def visit(page: Page, address: str, ready: str) -> None:
    """Open a page, again while the server refuses it (503: overloaded, on a busy
    machine) until `ready` (a selector) is on it."""
    for _ in range(30):
        page.goto(address)
        if page.locator(ready).count():
            return
        page.wait_for_timeout(2000)
    expect(page.locator(ready)).to_be_visible()


def shoot(page: Page, name: str) -> None:
    page.wait_for_timeout(300)  # let transitions (toasts, focus rings) settle for the picture
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path))
    print(path)


def users(browser: Browser, url: str) -> None:
    page = chat_page(browser, url)
    shoot(page, "login")
    log_in(page, ALICE)
    open_chat(page, "Bob")
    if page.get_by_test_id("message-text").count() < 2:  # once, not on every run
        page.get_by_test_id("composer-input").fill(
            "The screenshots are ready: desktop, phone, Chinese and dark mode."
        )
        page.get_by_test_id("composer-send").click()
        page.wait_for_function("() => window.__chat.state().outbox === 0")
    shoot(page, "chat")
    page.get_by_test_id("nav-contacts").click()
    page.get_by_test_id("friend-item").filter(has_text="Bob").first.click()
    shoot(page, "contacts")
    page.get_by_test_id("nav-wallet").click()
    shoot(page, "wallet")
    page.context.close()

    phone = chat_page(browser, url, viewport=PHONE)
    log_in(phone, ALICE)
    chat_item = phone.get_by_test_id("chat-item").filter(has_text="Bob").first
    expect(chat_item).to_be_visible(timeout=60_000)  # the list loads after the link
    shoot(phone, "phone-list")
    open_chat(phone, "Bob")
    shoot(phone, "phone-chat")
    phone.context.close()

    chinese = chat_page(browser, url, language="zh-Hans")
    log_in(chinese, ALICE)
    open_chat(chinese, "Bob")
    shoot(chinese, "chat-zh-hans")
    chinese.context.close()

    dark = chat_page(browser, url, dark=True)
    log_in(dark, ALICE)
    open_chat(dark, "Bob")
    shoot(dark, "chat-dark")
    dark.context.close()


def operators(browser: Browser, url: str) -> None:
    operator = browser.new_context(viewport=DESKTOP).new_page()  # type: ignore[arg-type]
    visit(operator, f"{url}/admin/login/?next=/monitoring/", "#id_username")
    operator.fill("#id_username", OPERATOR[0])
    operator.fill("#id_password", OPERATOR[1])
    operator.click("input[type=submit]")
    operator.wait_for_url(f"{url}/monitoring/")
    operator.wait_for_function(
        "() => window.__dashboard && window.__dashboard.state().refreshes > 0"
    )
    shoot(operator, "monitoring")
    operator.context.close()


def developers(browser: Browser, url: str) -> None:
    developer = browser.new_context(viewport=DESKTOP).new_page()  # type: ignore[arg-type]
    for _ in range(10):  # an overloaded demo server may refuse the login (503): again
        visit(developer, f"{url}/platform/login/", "input[name=username]")
        developer.fill("input[name=username]", BOB[0])
        developer.fill("input[name=password]", BOB[1])
        developer.click("button[type=submit]")
        developer.wait_for_load_state()
        if developer.locator("a[href^='/platform/accounts/']").count():
            break
    visit(developer, f"{url}/platform/", "a[href^='/platform/accounts/']")
    account = developer.locator("a[href^='/platform/accounts/']").first.get_attribute("href")
    visit(developer, f"{url}{account}", "[data-testid=menu-form]")
    developer.locator("h2", has_text="Menu").evaluate("(h) => h.scrollIntoView()")
    shoot(developer, "platform-menu")
    developer.context.close()


SETS = {"users": users, "operators": operators, "developers": developers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--only", choices=sorted(SETS), action="append", help="Some screens only.")
    options = parser.parse_args()
    url = options.url.rstrip("/")
    OUT.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=30_000)  # a busy machine: the demo server may be slow
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name in options.only or list(SETS):
            SETS[name](browser, url)
        browser.close()


if __name__ == "__main__":
    main()
