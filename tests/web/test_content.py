"""The web client's content and attention, end to end in Chromium: images and
files, the character counter, group administration from the chat's panel,
mentions, quotes and the message menu, typing, desktop notifications and mute.

Each person has their own browser context, on their own server process.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, FilePayload, expect

from accounts.models import User
from devtools.processes import ServerProcess
from messaging.models import Conversation, HiddenMessage, MemberRole, Membership, Message
from messaging.services.conversations import direct_open
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from tests.factories import login_session, make_friends, make_user
from tests.support.browser import ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

# Records every desktop notification the page creates through the real API
# (the browser would show it; headless, nobody sees it).
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notified = [];
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notified.push({ title, body: (options || {}).body || "" });
    }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


def png(color: tuple[int, int, int] = (7, 193, 96)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), color).save(buffer, format="PNG")
    return buffer.getvalue()


def people(*names: str) -> list[User]:
    """Users who are all friends with each other."""
    users = [make_user(nickname=name) for name in names]
    for index, user in enumerate(users):
        for other in users[index + 1 :]:
            make_friends(user, other)
    return users


def open_panel(chat: ChatPage) -> Any:
    chat.by_id("chat-header-button").click()
    panel = chat.by_id("chat-panel")
    expect(panel).to_be_visible()
    return panel


def member_row(panel: Any, user: User) -> Any:
    return panel.locator(f'[data-testid=group-member][data-user-id="{user.pk}"]')


def test_image_and_file__sent_from_one_browser__show_and_download_on_the_other(
    browser: Browser, asgi_servers: list[ServerProcess], tmp_path: Path
) -> None:
    # given Alice and Bob in their 1:1 chat, on different servers
    alice_user, bob_user = people("Alice", "Bob")
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Photos from the trip")
    bob.open_chat("Alice")
    bob.expect_texts(["Photos from the trip"])

    # when Alice attaches an image and a file with the attach button
    notes = b"Day 1: the Great Wall\nDay 2: Summer Palace\n"
    files: list[FilePayload] = [
        {"name": "wall.png", "mimeType": "image/png", "buffer": png()},
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": notes},
    ]
    alice.by_id("attach-input").set_input_files(files)
    # then both are sent: the image shows inline on her side ...
    image = alice.by_id("message-list").locator("[data-testid=message-image] img")
    expect(image).to_have_count(1, timeout=20_000)
    alice.page.wait_for_function("() => window.__chat.state().outbox === 0")
    expect(alice.by_id("message-list").get_by_test_id("message-file")).to_contain_text("notes.txt")

    # ... and on Bob's, the image drawn from the server and the file downloadable
    bob_image = bob.by_id("message-list").locator("[data-testid=message-image] img")
    expect(bob_image).to_have_count(1, timeout=20_000)
    bob.page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=message-image] img');"
        " return i && i.complete && i.naturalWidth === 48; }"
    )
    file_button = bob.by_id("message-list").get_by_test_id("message-file")
    expect(file_button).to_contain_text("notes.txt")
    with bob.page.expect_download() as download_info:
        file_button.click()
    download = download_info.value
    assert download.suggested_filename == "notes.txt"
    assert Path(download.path()).read_bytes() == notes
    bob.screenshot(tmp_path, "bob-image-and-file")
    kinds = list(
        Message.objects.filter(sender=alice_user).order_by("seq").values_list("kind", flat=True)
    )
    assert sorted(kinds[1:]) == ["file", "image"]

    # when Alice pastes 5,000 characters (the limit is 4,000)
    alice.by_id("composer-input").fill("x" * 5000)
    # then nothing is cut: the counter says how far over it is and Send waits
    assert (
        alice.page.evaluate(
            "() => document.querySelector('[data-testid=composer-input]').value.length"
        )
        == 5000
    )
    expect(alice.by_id("composer-counter")).to_have_text("5000 / 4000: 1000 too many")
    expect(alice.by_id("composer-send")).to_be_disabled()
    alice.by_id("composer-input").fill("x" * 3999)
    expect(alice.by_id("composer-counter")).to_have_text("3999 / 4000")
    expect(alice.by_id("composer-send")).to_be_enabled()

    # and the emoji picker writes into the message
    alice.by_id("composer-input").fill("Good night ")
    alice.by_id("emoji-button").click()
    alice.by_id("emoji-option").filter(has_text="🌙").click()
    alice.by_id("composer-send").click()
    bob.expect_texts(["Photos from the trip", "Good night 🌙"])
    assert alice.errors == bob.errors == []


def test_group__administered_from_the_header_panel__members_see_every_change(
    browser: Browser, asgi_servers: list[ServerProcess], tmp_path: Path
) -> None:
    # given Olivia's group with Bob; Carol is Olivia's friend too
    olivia_user, bob_user, carol_user = people("Olivia", "Bob", "Carol")
    olivia = ChatPage.login(browser, asgi_servers[0], olivia_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    olivia.create_group("Book club", [bob_user])
    olivia.send_and_wait("Welcome!")
    bob.open_chat("Book club")

    # when Olivia opens the panel from the chat's header
    panel = open_panel(olivia)
    expect(panel.get_by_test_id("group-member")).to_have_count(2)
    expect(member_row(panel, olivia_user).get_by_test_id("member-role")).to_have_text("Owner")
    # and adds Carol
    panel.get_by_test_id("group-add-button").click()
    panel.locator(f'[data-testid=group-add-option][data-user-id="{carol_user.pk}"] input').check()
    panel.get_by_test_id("group-add-confirm").click()
    expect(panel.get_by_test_id("group-member")).to_have_count(3)
    # renames the group and posts an announcement
    panel.get_by_test_id("group-rename-input").fill("Reading circle")
    panel.get_by_test_id("group-rename-save").click()
    panel.get_by_test_id("group-announcement-input").fill("Next: Dream of the Red Chamber")
    panel.get_by_test_id("group-announcement-save").click()
    # makes Bob an admin and removes Carol again
    member_row(panel, bob_user).get_by_test_id("member-admin").click()
    expect(member_row(panel, bob_user).get_by_test_id("member-role")).to_have_text("Admin")
    member_row(panel, carol_user).get_by_test_id("member-remove").click()
    olivia.by_id("confirm-ok").click()
    expect(panel.get_by_test_id("group-member")).to_have_count(2)
    olivia.screenshot(tmp_path, "olivia-group-panel")

    # then Bob sees the new name, and each change as a notice in the chat
    expect(bob.by_id("chat-title")).to_have_text("Reading circle", timeout=20_000)
    # (created … removed; within a heartbeat: a notify is best effort, DESIGN.md §4, and
    # a full run once saw only five for 20 s, presumably a notify lost)
    expect(bob.by_id("message-system")).to_have_count(6, timeout=45_000)
    # and his panel shows the announcement and him as an admin, who may rename
    bob_panel = open_panel(bob)
    expect(bob_panel.get_by_test_id("group-announcement-input")).to_have_value(
        "Next: Dream of the Red Chamber", timeout=20_000
    )
    expect(member_row(bob_panel, bob_user).get_by_test_id("member-role")).to_have_text(
        "Admin", timeout=20_000
    )
    # the owner cannot be removed by an admin: no button for it
    expect(member_row(bob_panel, olivia_user).get_by_test_id("member-remove")).to_have_count(0)

    # when Bob leaves the group
    bob_panel.get_by_test_id("group-leave").click()
    bob.by_id("confirm-ok").click()
    # then it is gone from his list, and Olivia's group has one member
    expect(bob.chat_item("Reading circle")).to_have_count(0, timeout=20_000)
    group = Conversation.objects.get(name="Reading circle")
    assert group.announcement == "Next: Dream of the Red Chamber"
    active = Membership.objects.filter(conversation=group, left_seq__isnull=True)
    assert [(m.user_id, m.role) for m in active] == [(olivia_user.pk, MemberRole.OWNER)]
    expect(olivia.page.locator(".chat-subtitle")).to_have_text("(1)", timeout=20_000)
    assert olivia.errors == bob.errors == []


def test_mention_quote_forward_and_delete_for_me__through_the_picker_and_the_menu(
    browser: Browser, asgi_servers: list[ServerProcess], tmp_path: Path
) -> None:
    # given Olivia's group with Bob
    olivia_user, bob_user = people("Olivia", "Bob")
    olivia = ChatPage.login(browser, asgi_servers[0], olivia_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    olivia.create_group("Team", [bob_user])
    olivia.send_and_wait("Standup at ten")
    bob.open_chat("Team")
    bob.expect_texts(["Standup at ten"])

    # when Bob types "@" and picks Olivia from the picker (no @all: he is no admin)
    composer = bob.by_id("composer-input")
    composer.press_sequentially("Sure @Ol")
    options = bob.by_id("mention-option")
    expect(options).to_have_count(1)
    expect(bob.page.locator('[data-testid=mention-option][data-user-id="all"]')).to_have_count(0)
    options.first.click()
    composer.press_sequentially("see you there")
    composer.press("Enter")

    # then Olivia sees the mention highlighted as hers; the server holds it as a mention
    olivia.expect_texts(["Standup at ten", "Sure @Olivia see you there"])
    expect(olivia.messages().last).to_have_attribute("data-mentions-me", "true")
    expect(olivia.messages().last.locator(".mention-me")).to_have_text("@Olivia")
    mention = Message.objects.get(sender=bob_user)
    assert mention.body["mentions"] == [olivia_user.pk]

    # when Olivia quotes Bob's message from its menu and replies
    olivia.messages().last.locator(".bubble").click(button="right")
    olivia.by_id("menu-quote").click()
    expect(olivia.by_id("composer-quote-text")).to_have_text("Bob: Sure @Olivia see you there")
    olivia.send("Great")
    # then Bob sees the reply with the quote above it
    quote = bob.by_id("message-list").get_by_test_id("message-quote")
    expect(quote).to_have_text("Bob: Sure @Olivia see you there", timeout=20_000)
    reply = Message.objects.filter(sender=olivia_user).order_by("-seq").first()
    assert reply is not None
    assert reply.body["reply_to"] == mention.pk
    # and Olivia, the owner, may mention everyone
    olivia.by_id("composer-input").press_sequentially("@a")
    expect(olivia.page.locator('[data-testid=mention-option][data-user-id="all"]')).to_have_count(1)
    olivia.page.locator('[data-testid=mention-option][data-user-id="all"]').click()
    olivia.by_id("composer-input").press_sequentially("slides due today")
    olivia.by_id("composer-input").press("Enter")
    expect(bob.messages().last.locator(".mention-me")).to_have_text("@all", timeout=20_000)
    bob.screenshot(tmp_path, "bob-mentions-and-quote")

    # when Bob forwards Olivia's first message (here, back into the group)
    bob.messages().filter(has_text="Standup at ten").first.locator(".bubble").click(button="right")
    bob.by_id("menu-forward").click()
    dialog = bob.by_id("forward-dialog")
    dialog.get_by_test_id("forward-option").filter(has_text="Team").locator("input").check()
    dialog.get_by_test_id("forward-send").click()
    expect(bob.messages().last).to_contain_text("Standup at ten", timeout=20_000)
    # (a message still sending has no menu yet: wait until the server has it)
    expect(bob.messages().last).to_have_attribute("data-state", "sent", timeout=20_000)
    # and deletes it for himself
    bob.messages().last.locator(".bubble").click(button="right")
    bob.by_id("menu-delete").click()
    forwarded = Message.objects.filter(sender=bob_user).order_by("-seq").first()
    assert forwarded is not None
    assert forwarded.body["text"] == "Standup at ten"
    expect(
        bob.page.locator(f'[data-testid=message][data-message-id="{forwarded.pk}"]')
    ).to_have_count(0)
    # then it is gone for him only: Olivia still has it
    assert HiddenMessage.objects.filter(user=bob_user, message=forwarded).exists()
    expect(olivia.messages().last).to_contain_text("Standup at ten", timeout=20_000)
    assert olivia.errors == bob.errors == []


def test_desktop_notification__for_a_chat_not_on_screen__none_once_muted(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given Bob, who allowed notifications, with no chat open; and Alice
    alice_user, bob_user = people("Alice", "Bob")
    alice = ChatPage.login(browser, asgi_servers[0], alice_user)
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    bob.context.grant_permissions(["notifications"], origin=asgi_servers[1].url)
    bob.context.add_init_script(RECORD_NOTIFICATIONS)
    bob.reload()
    assert bob.page.evaluate("Notification.permission") == "granted"
    expect(bob.by_id("notify-banner")).to_have_count(0)  # nothing to ask

    # when Alice writes to him
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Dinner at seven?")
    # then Bob gets a desktop notification naming her, and a sound
    bob.page.wait_for_function("() => window.__notified.length === 1", timeout=20_000)
    assert bob.page.evaluate("window.__notified") == [
        {"title": "Alice", "body": "Dinner at seven?"}
    ]
    assert bob.page.evaluate("window.__chat.beeps()") >= 1

    # when he opens the chat, he sees her typing before her next message
    bob.open_chat("Alice")
    # (slowly: a client tells the server at most every 3 seconds, and her send just did)
    alice.by_id("composer-input").press_sequentially("On my way", delay=500)
    expect(bob.by_id("typing-indicator")).to_have_text("typing…", timeout=20_000)
    alice.by_id("composer-input").press("Enter")
    bob.expect_texts(["Dinner at seven?", "On my way"])
    expect(bob.by_id("typing-indicator")).to_be_hidden()

    # when Bob mutes the chat and pins it from its panel, then leaves it
    panel = open_panel(bob)
    panel.get_by_test_id("chat-mute").check()
    panel.get_by_test_id("chat-pin").check()
    bob.by_id("chat-panel-close").click()
    expect(bob.chat_item("Alice")).to_have_attribute("data-muted", "true")
    bob.show_contacts()
    count = bob.page.evaluate("window.__notified.length")
    alice.send_and_wait("Bring the wine")
    # then the message arrives but no notification shows
    bob.show_chats()
    expect(bob.chat_item("Alice").get_by_test_id("chat-item-preview")).to_have_text(
        "Bring the wine", timeout=20_000
    )
    assert bob.page.evaluate("window.__notified.length") == count
    membership = Membership.objects.get(user=bob_user, conversation__kind="direct")
    assert membership.muted is True
    assert membership.pinned_at is not None
    # and his other device shows the chat muted and pinned too (synced by the server)
    phone = bob.another_device(browser)
    expect(phone.chat_item("Alice")).to_have_attribute("data-muted", "true", timeout=20_000)
    expect(phone.chat_item("Alice")).to_have_attribute("data-pinned", "true")
    assert alice.errors == bob.errors == phone.errors == []


def test_jump_to_first_unread__after_many_messages__loads_back_and_shows_it(
    browser: Browser, asgi_servers: list[ServerProcess]
) -> None:
    # given Bob has read his chat with Alice, then 80 messages came while he was away
    alice_user, bob_user = people("Alice", "Bob")
    alice_session = login_session(alice_user)
    chat = direct_open(ticket=alice_session.ticket, user_id=alice_user.pk, peer_id=bob_user.pk).pk
    for n in range(1, 81):
        message_send(
            ticket=alice_session.ticket, user_id=alice_user.pk, conversation_id=chat,
            client_msg_id=f"away-{n}", content=OutgoingContent("text", f"Message {n}"),
        )  # fmt: skip
    bob = ChatPage.login(browser, asgi_servers[1], bob_user)
    # when he opens the chat (at its newest message)
    bob.open_chat("Alice")
    expect(bob.messages().last).to_contain_text("Message 80")
    # then a button offers the first unread message, and takes him there
    jump = bob.by_id("jump-unread")
    expect(jump).to_have_text("↑ 80 new messages")
    jump.click()
    first = bob.by_id("message-list").locator('[data-testid=message][data-seq="1"]')
    expect(first).to_contain_text("Message 1", timeout=20_000)
    expect(first).to_be_in_viewport()
    expect(jump).to_be_hidden()
    assert bob.errors == []
