"""A feature flag in the web client: an operator turns chat search on, and the
open page shows it without a reload (pushed through SYNC); the kill switch takes
it away again the same way."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, expect

from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess
from messaging.services.conversations import direct_open
from tests.factories import (
    PASSWORD,
    login_session,
    login_ticket,
    make_feature,
    make_friends,
    make_user,
)
from tests.support.browser import ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_chat_search_flag__turned_on_then_killed__comes_and_goes_without_a_reload(
    browser: Browser, asgi_servers: list[ServerProcess], celery_worker: ServerProcess
) -> None:
    # given: Alice with chats with Bob and Carol; chat search exists but is off
    alice, bob, carol = (make_user(nickname=n) for n in ("Alice", "Bob", "Carol"))
    for friend in (bob, carol):
        make_friends(alice, friend)
        direct_open(ticket=login_ticket(alice), user_id=alice.pk, peer_id=friend.pk)
    make_feature("web.chat_search", client_visible=True, percentage_bp=0)
    operator = make_user()
    operator_grant(user=operator)
    ops = login_session(operator).headers
    page = ChatPage.login(browser, asgi_servers[0], alice)
    expect(page.by_id("chat-item")).to_have_count(2)
    expect(page.by_id("chat-search")).to_be_hidden()
    page.page.evaluate("window.__sameDocument = true")
    # when: an operator adds Alice to the feature's allow list (through the other server)
    url = f"{asgi_servers[1].url}/api/grayrelease/features/web.chat_search"
    answer = httpx.patch(
        url, json={"allow": [str(alice.pk)], "comment": "try it"}, headers=ops, timeout=10
    )
    assert answer.status_code == 200, answer.text
    # then: the search box appears in the open page, and it works
    expect(page.by_id("chat-search")).to_be_visible(timeout=20_000)
    assert page.page.evaluate("window.__sameDocument") is True  # no reload
    page.by_id("chat-search-input").fill("car")
    expect(page.by_id("chat-item")).to_have_count(1)
    expect(page.by_id("chat-item-name")).to_have_text(["Carol"])
    page.by_id("chat-search-input").fill("nobody")
    expect(page.by_id("chat-search-empty")).to_be_visible()
    # when: the kill switch is pulled
    kill = httpx.post(
        f"{url}/kill-switch", json={"killed": True, "comment": "bug"}, headers=ops, timeout=10
    )
    assert kill.status_code == 200, kill.text
    # then: the box goes, and the whole list is back
    expect(page.by_id("chat-search")).to_be_hidden(timeout=20_000)
    expect(page.by_id("chat-item")).to_have_count(2)
    assert page.page.evaluate("window.__sameDocument") is True
    assert page.state()["flags"]["web.chat_search"] == {"enabled": False, "revision": 3}
    assert page.errors == []


def test_admin_preview_button__shows_coverage_of_the_unsaved_form(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: three users signed in on iOS, an operator on the feature's admin page
    for _ in range(3):
        login_session(make_user(), platform="ios")
    feature = make_feature("web.admin_preview", percentage_bp=0)
    operator = make_user(email="ops.preview@example.com")
    operator_grant(user=operator)
    context = browser.new_context()
    page = context.new_page()
    page.goto(
        f"{asgi_servers[0].url}/admin/login/?next=/admin/grayrelease/feature/{feature.pk}/change/"
    )
    page.fill("#id_username", "ops.preview@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    # when: she sets 100 % of iOS in the form, without saving, and asks for a preview
    page.fill("#id_percentage", "100")
    page.check("input[name=platforms][value=ios]")
    page.click("#coverage-preview-button")
    # then: the counts show under the form; nothing was saved
    result = page.locator("#coverage-preview-result")
    expect(result.locator("[data-rule=enabled]")).to_have_attribute("data-users", "3")
    expect(result.locator("[data-rule=platforms]")).to_have_attribute("data-users", "3")
    feature.refresh_from_db()
    assert feature.percentage_bp == 0
