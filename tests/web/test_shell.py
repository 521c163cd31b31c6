"""The client's shell as people see it: a phone's one-pane layout, the language
(English or Simplified Chinese, switched and remembered), one colour per avatar."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from devtools.processes import ServerProcess
from tests.factories import PASSWORD, make_friends, make_user
from tests.support.browser import ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LONG_TEXT = "Shall we meet at the station at seven and walk to the lake together afterwards?"


def test_phone__at_390_px__shows_one_pane_at_a_time_and_bubbles_use_the_width(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice and Bob, friends; Alice on a phone-sized screen
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    alice.page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    # when: she opens the chat with Bob from her contacts and writes a long message
    alice.open_direct_with(bob_user)
    alice.send_and_wait(LONG_TEXT)
    # then: the chat fills the screen alone, the list and the tabs are hidden
    expect(alice.page.locator(".mainpane")).to_be_visible()
    expect(alice.page.locator(".listpane")).to_be_hidden()
    expect(alice.by_id("nav-chats")).to_be_hidden()
    main = alice.page.locator(".mainpane").bounding_box()
    assert main is not None
    assert main["width"] == pytest.approx(PHONE["width"], abs=1)
    # and: the bubble is wide enough for words, not a few letters a line
    bubble = alice.messages().last.locator(".bubble").bounding_box()
    assert bubble is not None
    assert bubble["width"] > 0.55 * PHONE["width"], bubble
    assert bubble["height"] < 5 * 24, bubble  # a few lines, not dozens
    # and: nothing is wider than the screen
    assert alice.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # when: she goes back
    alice.by_id("phone-back").click()
    # then: the chat list fills the screen with the tabs, and the chat is in it
    expect(alice.page.locator(".listpane")).to_be_visible()
    expect(alice.page.locator(".mainpane")).to_be_hidden()
    expect(alice.by_id("nav-chats")).to_be_visible()
    expect(alice.chat_item("Bob")).to_be_visible()
    # when: she opens it again from the list
    alice.chat_item("Bob").click()
    # then: the chat is back, alone
    expect(alice.by_id("chat-title")).to_have_text("Bob")
    expect(alice.page.locator(".listpane")).to_be_hidden()


def test_language__switched_on_the_login_screen__is_remembered_and_switched_back(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Carol, friends with Alice, at the login screen of an English browser
    carol_user, alice_user = make_user(nickname="Carol"), make_user(nickname="Alice")
    make_friends(carol_user, alice_user)
    carol = ChatPage.open(browser, asgi_servers[0], carol_user)
    expect(carol.by_id("login-submit")).to_have_text("Log in")
    # when: she switches to Chinese
    carol.by_id("language-switch").click()
    # then: the login screen is in Chinese, and so is the server's answer to a typo
    expect(carol.by_id("login-submit")).to_have_text("登录")
    carol.fill_login(carol_user.email or carol_user.phone or "", "not-my-password")
    expect(carol.by_id("login-error")).to_contain_text("账号或密码错误")
    # when: she logs in
    carol.fill_login(carol_user.email or carol_user.phone or "", PASSWORD)
    carol.wait_online()
    # then: the shell is in Chinese, her friend counted in the heading
    expect(carol.by_id("conn-text")).to_have_text("在线")
    expect(carol.by_id("nav-chats")).to_have_attribute("title", "微信")
    carol.show_contacts()
    expect(carol.page.locator("[data-testid=contact-list] .list-heading")).to_have_text("好友（1）")  # noqa: RUF001
    expect(carol.by_id("friend-item")).to_have_count(1)
    # when: she reloads the page
    carol.reload()
    # then: the language was remembered
    expect(carol.by_id("conn-text")).to_have_text("在线")
    # when: she switches back to English
    carol.by_id("language-switch").click()
    carol.wait_online()
    # then: English again, everywhere
    expect(carol.by_id("conn-text")).to_have_text("Online")
    carol.show_contacts()
    expect(carol.page.locator("[data-testid=contact-list] .list-heading")).to_have_text(
        "Friends (1)"
    )
    assert carol.page.evaluate("document.documentElement.lang") == "en"


def test_avatar__of_one_account__has_one_colour_in_contacts_chat_list_and_chat(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice and Bob (no photos), who chatted
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    bob.open_direct_with(alice_user)
    bob.send_and_wait("Hello")
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    # when: Alice sees Bob in her contacts, her chat list and the chat
    alice.show_contacts()
    in_contacts = alice.page.locator(
        f'[data-testid=friend-item][data-user-id="{bob_user.pk}"] .avatar'
    ).get_attribute("data-colour")
    alice.open_chat("Bob")
    in_list = alice.chat_item("Bob").locator(".avatar").get_attribute("data-colour")
    in_chat = alice.messages().last.locator(".avatar").get_attribute("data-colour")
    # then: one colour
    assert in_contacts
    assert in_contacts == in_list == in_chat
