"""The Content-Security-Policy in Chromium: every page still works under it, and
a script someone manages to inject into a page does not run."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess
from tests.factories import PASSWORD, make_feature, make_friends, make_user
from tests.support.browser import VIEWPORT, ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

# A page's violations land in its console ("Refused to ... Content Security Policy").
VIOLATION = "Content Security Policy"


def watch_violations(page: Page) -> list[str]:
    violations: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if VIOLATION in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", seen)
    return violations


def inject_inline_script(page: Page) -> object:
    """What an XSS does: put an inline script into the page; returns what it set."""
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__injected = \"ran\"'; document.body.appendChild(s); }"
    )
    return page.evaluate("window.__injected")


def policy_of(response: httpx.Response) -> dict[str, list[str]]:
    directives = response.headers["content-security-policy"].split(";")
    return {d.split()[0]: d.split()[1:] for d in (d.strip() for d in directives) if d}


def test_headers__every_page__carry_the_policy(asgi_servers: list[ServerProcess]) -> None:
    for path in ("/", "/admin/login/", "/platform/login/", "/api/docs/", "/api/health"):
        policy = policy_of(httpx.get(f"{asgi_servers[0].url}{path}"))
        assert policy["script-src"][0] == "'self'"
        assert all(s.startswith("'nonce-") for s in policy["script-src"][1:])
        assert (policy["object-src"], policy["frame-ancestors"]) == (["'none'"], ["'none'"])
    # the web client's page lets its own inline import map run, by nonce, and only it
    page = httpx.get(f"{asgi_servers[0].url}/")
    nonce = policy_of(page)["script-src"][1].removeprefix("'nonce-").removesuffix("'")
    assert f'<script type="importmap" nonce="{nonce}">' in page.text


def test_web_client__under_the_policy__chats_and_refuses_an_injected_script(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: two friends in the web client (its modules load through the import map)
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    alice = ChatPage.open(browser, asgi_servers[0], alice_user)
    violations = watch_violations(alice.page)
    alice.fill_login(alice_user.email or "", PASSWORD)
    alice.wait_online()
    bob = ChatPage.login(browser, asgi_servers[0], bob_user)
    # when: they chat, over the websocket
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Under the policy")
    bob.open_chat("Alice")
    bob.expect_texts(["Under the policy"])
    # then: nothing the client does was refused
    assert violations == []
    assert alice.errors == []
    # when: a script is injected into the page
    ran = inject_inline_script(alice.page)
    # then: it did not run, and the browser says why
    assert ran is None
    assert any("inline script" in v for v in violations), violations


def test_operator_pages__under_the_policy__work_without_a_refusal(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: an operator (staff) who also develops official accounts
    operator = make_user(nickname="Ops", email="ops-csp@example.com")
    operator_grant(user=operator)
    feature = make_feature("web.csp_check", percentage_bp=0)
    server = asgi_servers[0].url
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    violations = watch_violations(page)
    # when: they log in to the admin and use it (the feature form's preview runs a script)
    page.goto(f"{server}/admin/login/?next=/admin/")
    page.fill("#id_username", operator.email or "")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_contain_text("operations")
    page.goto(f"{server}/admin/accounts/user/{operator.pk}/change/")
    expect(page.locator("#user_form")).to_be_visible()
    page.goto(f"{server}/admin/grayrelease/feature/{feature.pk}/change/")
    page.click("#coverage-preview-button")
    expect(page.locator("#coverage-preview-result [data-rule=enabled]")).to_be_visible()
    # and the dashboards, the developer console and the API documentation
    page.goto(f"{server}/monitoring/")
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Overview")
    page.wait_for_function("() => window.__dashboard && window.__dashboard.state()")
    page.goto(f"{server}/platform/")
    expect(page.get_by_test_id("console-logout")).to_be_visible()
    page.goto(f"{server}/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    page.goto(f"{server}/api/redoc/")
    expect(page.locator("h1").first).to_contain_text("WeChat-style messaging API")
    # then: the browser refused nothing on any of them
    assert violations == []
    # and a script injected into an operator's page does not run either
    assert inject_inline_script(page) is None
    context.close()
