"""Logging in and out, and contacts in the web client: search, friend requests."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from accounts.models import Device
from devtools.processes import ServerProcess
from tests.factories import PASSWORD, make_user, send_request
from tests.support.browser import ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_login__wrong_then_right_password__explains_then_connects_as_one_stable_device(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice at the login screen
    alice_user = make_user(nickname="Alice", email="alice.web@example.com")
    alice = ChatPage.open(browser, asgi_servers[0], alice_user)
    # when: she mistypes her password
    alice.fill_login("alice.web@example.com", "not-my-password")
    # then: she is told, and stays on the login screen
    expect(alice.by_id("login-error")).to_contain_text("Wrong login or password")
    # when: she types it right
    alice.fill_login("alice.web@example.com", PASSWORD)
    alice.wait_online()
    # then: a web device with the browser's stable id holds her session
    device_uuid = alice.page.evaluate("JSON.parse(localStorage.getItem('wc:device'))")
    device = Device.objects.get(user=alice_user)
    assert (str(device.device_uuid), device.platform) == (device_uuid, "web")
    assert device.client_version == "3.0.0"
    # when: she logs out and in again
    alice.by_id("logout-button").click()
    expect(alice.by_id("login-form")).to_be_visible()
    assert alice.page.evaluate("localStorage.getItem('wc:session')") is None
    alice.fill_login("alice.web@example.com", PASSWORD)
    alice.wait_online()
    # then: it is still the same device
    assert Device.objects.filter(user=alice_user).count() == 1


def test_contacts__search_and_request_with_greeting__accepted_makes_friends_who_can_chat(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice and Bob, strangers; Bob has a WeChat ID
    alice_user = make_user(nickname="Alice")
    bob_user = make_user(nickname="Bob", wechat_id="bob_builder")
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    # when: Alice finds Bob by his WeChat ID and asks with a greeting
    alice.show_contacts()
    alice.by_id("contacts-add").click()
    alice.by_id("add-friend-query").fill("bob_builder")
    alice.by_id("add-friend-search").click()
    result = alice.by_id("search-result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("Bob")
    result.get_by_test_id("greeting-input").fill("Hi Bob, it's Alice from the climbing club")
    result.get_by_test_id("search-result-add").click()
    expect(result.get_by_test_id("request-outcome")).to_have_text("Request sent.")
    # then: Bob is told of the request (a contact entry), greeting included
    expect(bob.by_id("nav-contacts-badge")).to_have_text("1")
    bob.show_contacts()
    bob.by_id("contacts-requests").click()
    request = bob.by_id("request-item")
    expect(request.get_by_test_id("request-greeting")).to_have_text(
        "Hi Bob, it's Alice from the climbing club"
    )
    # when: he accepts
    request.get_by_test_id("request-accept").click()
    # then: each has the other as a friend (Alice learns through her sync log)
    expect(request.get_by_test_id("request-status")).to_have_text("Added")
    expect(
        bob.page.locator(f'[data-testid=friend-item][data-user-id="{alice_user.pk}"]')
    ).to_be_visible()
    alice.show_contacts()
    expect(
        alice.page.locator(f'[data-testid=friend-item][data-user-id="{bob_user.pk}"]')
    ).to_be_visible()
    expect(bob.by_id("nav-contacts-badge")).to_be_hidden()
    # and: they can chat
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Welcome aboard")
    bob.open_chat("Alice")
    bob.expect_texts(["Welcome aboard"])


def test_contacts__declined_request__shows_declined_and_adds_no_friend(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Carol asked Bob to be friends
    bob_user, carol_user = make_user(nickname="Bob"), make_user(nickname="Carol")
    send_request(carol_user, bob_user, greeting="Remember me?")
    bob = ChatPage.login(browser, asgi_servers[0], bob_user)
    expect(bob.by_id("nav-contacts-badge")).to_have_text("1")
    # when: Bob declines
    bob.show_contacts()
    bob.by_id("contacts-requests").click()
    bob.by_id("request-item").get_by_test_id("request-decline").click()
    # then
    expect(bob.by_id("request-status")).to_have_text("Declined")
    expect(bob.by_id("nav-contacts-badge")).to_be_hidden()
    expect(bob.by_id("friend-item")).to_have_count(0)
