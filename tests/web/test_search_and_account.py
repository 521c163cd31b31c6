"""In the browser: finding an old Chinese message by a two-character word and
jumping to it; signing up, setting a profile, an avatar and a WeChat ID, being
found by it (and by e-mail) from another browser; logging out another device."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image
from playwright.sync_api import Browser, expect

from accounts.models import User
from accounts.tickets import ticket_verify
from devtools.processes import ServerProcess
from messaging.services.conversations import direct_open
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from tests.factories import login_session, make_friends, make_user
from tests.support.browser import VIEWPORT, ChatPage, off_loop

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

NEWER = 260  # more than the chat's first history page (50): the old message is not loaded


def send_texts(sender: User, peer: User, texts: list[str]) -> tuple[int, list[int]]:
    session = login_session(sender)
    ticket = ticket_verify(token=session.token)
    chat = direct_open(ticket=ticket, user_id=sender.pk, peer_id=peer.pk).pk
    ids = [
        message_send(
            ticket=ticket,
            user_id=sender.pk,
            conversation_id=chat,
            client_msg_id=uuid.uuid4().hex,
            content=OutgoingContent(kind="text", text=text),
        ).message_id
        for text in texts
    ]
    return chat, ids


def test_search__finds_an_old_message_by_a_two_character_chinese_word_and_jumps_to_it(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: long ago Alice told Bob the meeting (会议) moved; many messages since
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    old_text = "下周三的会议改到五楼"
    texts = [old_text] + [f"闲聊 {n}" for n in range(NEWER)]
    _, ids = off_loop(send_texts, alice, bob, texts)
    bob_page = ChatPage.login(browser, asgi_servers[0], bob)
    # when: Bob searches his messages for 会议
    bob_page.by_id("message-search-button").click()
    bob_page.by_id("message-search-input").fill("会议")
    hit = bob_page.by_id("message-search-result")
    expect(hit).to_have_count(1)
    expect(hit.get_by_test_id("message-search-snippet")).to_contain_text(old_text)
    expect(hit.locator("mark")).to_have_text("会议")
    # and opens the hit
    hit.click()
    # then: the chat with Alice opens at that message, highlighted and in view
    expect(bob_page.by_id("chat-title")).to_have_text("Alice")
    found = bob_page.page.locator(f'[data-testid=message][data-message-id="{ids[0]}"]')
    expect(found).to_have_attribute("data-found", "true")
    expect(found.get_by_test_id("message-text")).to_have_text(old_text)
    expect(found).to_be_in_viewport()
    # and the history between it and now is there, in order
    assert bob_page.messages().count() == NEWER + 1
    expect(bob_page.message_texts().last).to_have_text(f"闲聊 {NEWER - 1}")


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (250, 80, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_sign_up__profile_avatar_and_wechat_id__then_found_from_another_browser(
    browser: Browser, asgi_servers: list[ServerProcess], tmp_path: object
) -> None:
    server = asgi_servers[0]
    # given: Mei opens the web client for the first time, with no account
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{server.url}/")
    # when: she signs up with only an e-mail address
    page.get_by_test_id("signup-open").click()
    page.get_by_test_id("signup-nickname").fill("Mei")
    page.get_by_test_id("signup-identifier").fill("mei@example.com")
    page.get_by_test_id("signup-password").fill("a strong passphrase 7")
    page.get_by_test_id("signup-submit").click()
    # then: she is in, online
    page.wait_for_function("() => window.__chat && window.__chat.state().connected")
    mei = User.objects.get(email="mei@example.com")
    assert (mei.nickname, mei.phone) == ("Mei", None)
    # when: she sets her region and signature, an avatar and a WeChat ID
    page.get_by_test_id("me").click()
    dialog = page.get_by_test_id("profile-dialog")
    dialog.get_by_test_id("profile-region").fill("杭州")
    dialog.get_by_test_id("profile-signature").fill("喜欢爬山")
    dialog.get_by_test_id("profile-save").click()
    expect(page.get_by_test_id("toast")).to_have_text("Profile saved.")
    dialog.get_by_test_id("profile-avatar-input").set_input_files(
        {"name": "me.png", "mimeType": "image/png", "buffer": png()}
    )
    expect(dialog.get_by_test_id("profile-avatar").locator("img")).to_have_count(1)
    dialog.get_by_test_id("wechat-id-input").fill("mei_hangzhou")
    dialog.get_by_test_id("wechat-id-save").click()
    expect(dialog.get_by_test_id("profile-wechat-id")).to_have_text("mei_hangzhou")
    expect(dialog.get_by_test_id("privacy-discoverable_by_wechat_id")).to_be_checked()
    # then: it is saved, and her own avatar shows in the sidebar
    mei.refresh_from_db()
    assert (mei.region, mei.signature, mei.wechat_id) == ("杭州", "喜欢爬山", "mei_hangzhou")
    assert mei.avatar
    expect(page.get_by_test_id("me").locator("img")).to_have_count(1)
    dialog.get_by_test_id("profile-close").click()
    # when: Alice, in another browser, looks her up by WeChat ID, then by e-mail
    alice = ChatPage.login(browser, asgi_servers[1], make_user(nickname="Alice"))
    alice.show_contacts()
    alice.by_id("contacts-add").click()
    for query in ("mei_hangzhou", "mei@example.com"):
        alice.by_id("add-friend-query").fill(query)
        alice.by_id("add-friend-search").click()
        result = alice.by_id("search-result")
        expect(result).to_have_count(1)
        expect(result).to_have_attribute("data-user-id", str(mei.pk))
        expect(result).to_contain_text("Mei")
        expect(result.locator("img")).to_have_count(1)
    # and when Mei hides her e-mail, that search finds nobody
    page.get_by_test_id("me").click()
    page.get_by_test_id("privacy-discoverable_by_email").uncheck()
    expect(page.get_by_test_id("toast")).to_have_text("Privacy setting saved.")
    alice.by_id("add-friend-query").fill("mei@example.com")
    alice.by_id("add-friend-search").click()
    expect(alice.by_id("search-status")).to_contain_text("No user found")
    page.get_by_test_id("profile-close").click()


def test_devices__log_out_another_device_from_the_list(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice on a laptop and a second browser
    user = make_user(nickname="Alice")
    laptop = ChatPage.login(browser, asgi_servers[0], user)
    other = laptop.another_device(browser)
    # when: on the laptop she opens her devices and logs the other one out
    laptop.by_id("me").click()
    devices = laptop.by_id("device-item")
    expect(devices).to_have_count(2)
    expect(laptop.page.locator("[data-testid=device-item][data-current=true]")).to_have_count(1)
    laptop.page.locator("[data-testid=device-item][data-current=false]").get_by_test_id(
        "device-logout"
    ).click()
    # then: the other browser is back at the login screen; the laptop stays in
    expect(other.by_id("login-form")).to_be_visible(timeout=20_000)
    expect(devices).to_have_count(1)
    laptop.by_id("profile-close").click()
    laptop.wait_online()
