"""Official accounts in the web client, in headless Chromium: find an account,
follow it, chat with its (WeRoBot) server and tap its menu."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from devtools.devservers import werobot_server
from devtools.processes import ServerProcess
from publicplatform.models import Follower
from publicplatform.services.menus import menu_set
from tests.factories import configure_server, make_official_account, make_user
from tests.support.browser import ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
TOKEN = "testtoken123"


def test_web_official__search_follow_chat_and_tap_the_menu__replies_show_in_the_chat(
    browser: Browser, platform_stack: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    # given: a museum's account with a WeRoBot server and a menu
    daphne, _ = platform_stack
    account, _ = make_official_account(name="City Museum")
    menu_set(
        account=account,
        data={
            "button": [
                {"type": "click", "name": "Opening hours", "key": "V1001_HOURS"},
                {
                    "name": "More",
                    "sub_button": [
                        {"type": "view", "name": "Website", "url": "http://127.0.0.1:9/"}
                    ],
                },
            ]
        },
    )
    alice_user = make_user(nickname="Alice")
    with werobot_server(TOKEN) as server:
        configure_server(account, url=server.url, token=TOKEN)
        alice = ChatPage.login(browser, daphne, alice_user)
        # when: she finds it under Contacts → Official accounts and follows it
        alice.show_contacts()
        alice.by_id("contacts-official").click()
        alice.by_id("official-query").fill("museum")
        alice.by_id("official-search").click()
        card = alice.by_id("official-card").filter(has_text="City Museum")
        card.get_by_test_id("official-follow").click()
        # then: its chat opens, with the server's welcome
        expect(alice.by_id("chat-title")).to_have_text("City Museum")
        openid = Follower.objects.get(account=account, user=alice_user).openid
        alice.expect_texts([f"welcome {openid}"])
        # when: she writes, and taps a menu button
        alice.send_and_wait("hello")
        alice.expect_texts([f"welcome {openid}", "hello", "echo: hello"])
        menu = alice.by_id("official-menu")
        expect(menu.get_by_test_id("official-menu-button").first).to_have_text("Opening hours")
        menu.get_by_test_id("official-menu-button").first.click()
        # then: the CLICK event's reply shows too
        alice.expect_texts([f"welcome {openid}", "hello", "echo: hello", "clicked V1001_HOURS"])
        alice.screenshot(tmp_path, "official-chat")
        events = [post.body for post in server.posts()]
    assert any(b"<Event><![CDATA[CLICK]]></Event>" in body for body in events)
    # and: the chat is in her chat list under the account's name
    alice.show_chats()
    expect(alice.chat_item("City Museum")).to_be_visible()
    assert alice.errors == []
