"""The web client end to end: two users in their own browsers, real daphne servers.

Alice's browser talks to one server process and Bob's to the other, so every
message crosses processes through the channel layer, as in a deployment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from accounts.models import User
from devtools.processes import ServerProcess
from messaging.models import Message
from tests.factories import make_friends, make_user
from tests.support.browser import ChatPage
from wechat_core.sync.models import UserSequence

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def friends(nicknames: tuple[str, ...] = ("Alice", "Bob")) -> list[User]:
    users = [make_user(nickname=name) for name in nicknames]
    for index, user in enumerate(users):
        for other in users[index + 1 :]:
            make_friends(user, other)
    return users


def test_web_chat__peer_offline_while_friend_sends__gets_every_message_once_in_order(
    browser: Browser, asgi_servers: list[ServerProcess], tmp_path: Path
) -> None:
    # given: Alice and Bob, friends, each in their own browser, on different servers
    alice_user, bob_user = friends()
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    # and: they chat 1:1 ...
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Hi Bob")
    bob.open_chat("Alice")
    bob.expect_texts(["Hi Bob"])
    bob.send_and_wait("Hi Alice!")
    alice.expect_texts(["Hi Bob", "Hi Alice!"])
    # ... and in a group Alice makes from her friends
    alice.create_group("Weekend plans", [bob_user])
    alice.send_and_wait("Hiking on Saturday?")
    bob.open_chat("Weekend plans")
    bob.expect_texts(["Hiking on Saturday?"])
    bob.send_and_wait("Count me in")
    alice.expect_texts(["Hiking on Saturday?", "Count me in"])

    # when: Bob's network goes away while Alice writes in both chats
    bob.go_offline()
    direct = [f"Direct message {n}" for n in range(1, 6)]
    group = [f"Group message {n}" for n in range(1, 5)]
    alice.open_chat("Bob")
    for text in direct[:3]:
        alice.send_and_wait(text)
    alice.open_chat("Weekend plans")
    for text in group:
        alice.send_and_wait(text)
    alice.open_chat("Bob")
    for text in direct[3:]:
        alice.send_and_wait(text)
    bob.expect_texts(["Hiking on Saturday?", "Count me in"])  # nothing reached him
    # and: his network comes back
    bob.go_online()

    # then: each message shows once, in send order, in the open group chat ...
    bob.expect_texts(["Hiking on Saturday?", "Count me in", *group])
    bob.screenshot(tmp_path, "bob-group-after-reconnect")
    # ... and in the 1:1 chat
    bob.open_chat("Alice")
    bob.expect_texts(["Hi Bob", "Hi Alice!", *direct])
    alice.expect_texts(["Hi Bob", "Hi Alice!", *direct])
    alice.screenshot(tmp_path, "alice-direct")

    # when: Bob reloads the page, once his client holds his whole log
    bob.page.wait_for_function("() => window.__chat.state().busy === 0")  # his read was answered
    key = UserSequence.objects.get(user=bob_user).last_seq
    bob.page.wait_for_function(f"() => window.__chat.state().key === {key}")
    bob.reload()
    # then: the client resumed from the key it kept, and still shows everything once
    state = bob.state()
    assert state["resumedFrom"] == key
    assert state["key"] >= key
    bob.open_chat("Alice")
    bob.expect_texts(["Hi Bob", "Hi Alice!", *direct])
    bob.open_chat("Weekend plans")
    bob.expect_texts(["Hiking on Saturday?", "Count me in", *group])
    bob.screenshot(tmp_path, "bob-group-after-reload")
    # and: the server holds each message once
    texts = list(Message.objects.filter(sender=alice_user).values_list("body__text", flat=True))
    assert sorted(t for t in texts if t) == sorted(
        ["Hi Bob", "Hiking on Saturday?", *direct, *group]
    )
    assert alice.errors == bob.errors == []


def test_outbox__message_written_offline__is_delivered_once_after_reconnecting(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice and Bob in their 1:1 chat
    alice_user, bob_user = friends()
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Entering the tunnel")
    bob.open_chat("Alice")
    # when: Alice writes while offline
    alice.go_offline()
    alice.send("Written in the tunnel")
    # then: it waits in the outbox (and in localStorage), shown as pending
    expect(alice.messages().last).to_have_attribute("data-state", "pending")
    stored = alice.page.evaluate(
        "JSON.parse(localStorage.getItem(`wc:u${window.__chat.state().userId}:outbox`))"
    )
    assert [item["content"]["text"] for item in stored] == ["Written in the tunnel"]
    bob.expect_texts(["Entering the tunnel"])
    # when: the network comes back
    alice.go_online()
    # then: it is sent, once
    expect(alice.messages().last).to_have_attribute("data-state", "sent")
    alice.page.wait_for_function("() => window.__chat.state().outbox === 0")
    bob.expect_texts(["Entering the tunnel", "Written in the tunnel"])
    alice.expect_texts(["Entering the tunnel", "Written in the tunnel"])
    assert (
        Message.objects.filter(sender=alice_user, body__text="Written in the tunnel").count() == 1
    )


def test_outbox__unsent_message_and_a_reload__resends_from_local_storage_once(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice wrote to Bob while offline, and the message waits in her outbox
    alice_user, bob_user = friends()
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Before the crash")
    bob.open_chat("Alice")
    alice.go_offline()
    alice.send("Survives the reload")
    expect(alice.messages().last).to_have_attribute("data-state", "pending")
    # when: she closes the tab, the network returns, and she opens the client again
    alice.page.close()
    alice.context.set_offline(False)
    alice.page = alice.context.new_page()
    alice.page.goto(f"{alice.server.url}/")
    alice.wait_online()
    # then: the outbox was resent from localStorage, and the message exists once
    alice.page.wait_for_function("() => window.__chat.state().outbox === 0")
    bob.expect_texts(["Before the crash", "Survives the reload"])
    alice.open_chat("Bob")
    alice.expect_texts(["Before the crash", "Survives the reload"])
    assert Message.objects.filter(sender=alice_user, body__text="Survives the reload").count() == 1


def test_outbox__ack_lost_with_the_link__resends_with_the_same_id_and_shows_it_once(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice and Bob in their 1:1 chat
    alice_user, bob_user = friends()
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Hello")
    bob.open_chat("Alice")
    connects = alice.state()["connects"]
    # when: the server takes her message but the link dies before its ack arrives
    alice.page.evaluate("window.__chat.loseNextAck()")
    alice.send("Did you get this?")
    # then: after the reconnect the resend gets the original ack (duplicate), not a copy
    alice.page.wait_for_function(
        f"() => window.__chat.state().connects > {connects} && window.__chat.state().outbox === 0"
    )
    assert alice.state()["duplicates"] == 1
    alice.expect_texts(["Hello", "Did you get this?"])
    bob.expect_texts(["Hello", "Did you get this?"])
    assert Message.objects.filter(sender=alice_user, body__text="Did you get this?").count() == 1


def test_recall__own_message_in_the_window__shows_as_recalled_on_both_sides(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice sent Bob two messages
    alice_user, bob_user = friends()
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Oops, wrong chat")
    alice.send_and_wait("This one stays")
    bob.open_chat("Alice")
    bob.expect_texts(["Oops, wrong chat", "This one stays"])
    # when: she recalls the first
    first = alice.messages().filter(has_text="Oops, wrong chat")
    first.hover()
    first.get_by_test_id("recall-button").click()
    # then: both see it as recalled, with its text gone
    expect(alice.by_id("message-recalled")).to_have_text(["You recalled a message"])
    expect(bob.by_id("message-recalled")).to_have_text(["Alice recalled a message"])
    alice.expect_texts(["This one stays"])
    bob.expect_texts(["This one stays"])
    expect(bob.chat_item("Alice").get_by_test_id("chat-item-preview")).to_have_text(
        "Alice recalled a message"
    )
    # and: after a reload too (history says so)
    bob.reload()
    bob.open_chat("Alice")
    expect(bob.by_id("message-recalled")).to_have_text(["Alice recalled a message"])
    bob.expect_texts(["This one stays"])


def test_unread__messages_to_a_closed_chat__counted_in_the_list_and_cleared_everywhere_on_open(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Bob on two devices, both showing the chat list; Alice's chat with him
    alice_user, bob_user = friends()
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob_laptop = ChatPage.login(browser, asgi_servers[1], bob_user)
    bob_desktop = ChatPage.login(browser, asgi_servers[0], bob_user)
    alice.open_direct_with(bob_user)
    # when: Alice sends three messages
    for text in ("One", "Two", "Three"):
        alice.send_and_wait(text)
    # then: both of Bob's devices count them
    for device in (bob_laptop, bob_desktop):
        expect(device.chat_item("Alice").get_by_test_id("chat-item-unread")).to_have_text("3")
        expect(device.by_id("nav-chats-badge")).to_have_text("3")
        expect(device.chat_item("Alice").get_by_test_id("chat-item-preview")).to_have_text("Three")
    # when: Bob opens the chat on his laptop
    bob_laptop.open_chat("Alice")
    bob_laptop.expect_texts(["One", "Two", "Three"])
    # then: the count clears there, and on his desktop through the read entry
    for device in (bob_laptop, bob_desktop):
        expect(device.chat_item("Alice").get_by_test_id("chat-item-unread")).to_have_count(0)
        expect(device.by_id("nav-chats-badge")).to_be_hidden()
    # and: a message arriving while the chat is open is read at once
    alice.send_and_wait("Four")
    bob_laptop.expect_texts(["One", "Two", "Three", "Four"])
    expect(bob_desktop.chat_item("Alice").get_by_test_id("chat-item-preview")).to_have_text("Four")
    expect(bob_desktop.chat_item("Alice").get_by_test_id("chat-item-unread")).to_have_count(0)
    # and: the server agrees after a reload
    bob_desktop.reload()
    expect(bob_desktop.chat_item("Alice")).to_be_visible()
    expect(bob_desktop.chat_item("Alice").get_by_test_id("chat-item-unread")).to_have_count(0)


def test_message_text__html_and_script_markup__shown_as_plain_text(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given: Alice and Bob, and a nickname that looks like markup
    alice_user, bob_user = friends(("<b>Alice</b>", "Bob"))
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    hostile = '<img src=x onerror="window.__owned = 1"><script>window.__owned = 2</script>'
    # when: Alice sends markup
    alice.open_direct_with(bob_user)
    alice.send_and_wait(hostile)
    bob.open_chat("<b>Alice</b>")
    # then: Bob sees the characters, and nothing of it became an element or ran
    bob.expect_texts([hostile])
    assert bob.by_id("message-list").locator("img, script, b").count() == 0
    assert bob.page.evaluate("window.__owned") is None
    expect(bob.chat_item("<b>Alice</b>").get_by_test_id("chat-item-preview")).to_have_text(hostile)
