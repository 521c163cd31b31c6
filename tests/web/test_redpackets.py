"""Red packets in the web client, in headless Chromium: one user sends a packet in a
chat, the others see the red bubble arrive live, open it and see their amount; the
sender's bubble and the details follow; the crediting worker puts the money in the
opener's wallet, and their wallet page shows it. The wallet stack (tests/conftest.py)
is a daphne and a Celery worker on the payout queues with a private broker, so the
credits run on a real `payout_fast` worker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, expect

from accounts.models import User
from devtools.processes import (
    ServerProcess,
    start_asgi_server,
    start_celery_worker,
    start_redis,
)
from messaging.services.conversations import direct_open
from redpackets.services.grabbing import packet_grab
from redpackets.services.sending import PacketRequest, packet_send
from tests.factories import fund_wallet, login_session, make_feature, make_friends, make_user
from tests.support.browser import ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

CREDIT_TIMEOUT_MS = 30_000  # the worker's queue, then the sync entry that says "credited"


@pytest.fixture(scope="module")
def workerless(
    live_env: dict[str, str], live_log_dir: Path
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """A daphne enqueueing credits on a private broker that no worker reads (yet).
    Returns the server and its environment, for a worker the test starts later."""
    broker = start_redis(log_dir=live_log_dir)
    env = live_env | {
        "CELERY_BROKER_URL": f"{broker.url}/0",
        "CELERY_RESULT_BACKEND": f"{broker.url}/0",
        "DATABASE_POOL_MAX_SIZE": "10",
    }
    daphne = start_asgi_server(log_dir=live_log_dir, env=env, name="daphne-rp-web")
    yield daphne, env
    daphne.stop()
    broker.stop()


def friends(*nicknames: str) -> list[User]:
    users = [make_user(nickname=name) for name in nicknames]
    for index, user in enumerate(users):
        for other in users[index + 1 :]:
            make_friends(user, other)
    return users


def send_packet(
    page: ChatPage, amount: str, greeting: str, *, shares: int | None = None, kind: str = ""
) -> None:
    page.by_id("redpacket-button").click()
    dialog = page.by_id("redpacket-send-dialog")
    dialog.get_by_test_id("redpacket-amount-input").fill(amount)
    if shares is not None:
        dialog.get_by_test_id("redpacket-shares-input").fill(str(shares))
    if kind:
        dialog.get_by_test_id("redpacket-kind").select_option(kind)
    dialog.get_by_test_id("redpacket-greeting-input").fill(greeting)
    dialog.get_by_test_id("redpacket-send").click()


def test_web_redpacket__sent_in_a_1to1_chat__opened_live_by_the_friend_and_credited(
    browser: Browser, wallet_stack: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    # given: Alice, with 20 CNY in her wallet, and Bob, friends, each in a browser
    daphne, _ = wallet_stack
    alice_user, bob_user = friends("Alice", "Bob")
    fund_wallet(alice_user, 2000)
    alice = ChatPage.login(browser, daphne, alice_user)
    bob = ChatPage.login(browser, daphne, bob_user)
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Happy new year!")
    bob.open_chat("Alice")
    # when: Alice sends Bob a red packet of 8.88 CNY with a greeting
    send_packet(alice, "8.88", "Lucky money")
    expect(alice.by_id("redpacket-send-dialog")).to_have_count(0)
    # then: the red bubble reaches Bob's open chat live, unopened, with the greeting
    bubble = bob.by_id("redpacket-bubble")
    expect(bubble).to_have_count(1)
    expect(bubble.get_by_test_id("redpacket-greeting")).to_have_text("Lucky money")
    expect(bubble.get_by_test_id("redpacket-cover")).to_have_attribute("data-cover", "default")
    expect(bubble.get_by_test_id("redpacket-status")).to_have_text("Tap to open")
    expect(bob.by_id("chat-item-preview")).to_have_text("[Red packet] Lucky money")
    mine = alice.by_id("redpacket-bubble")
    expect(mine.get_by_test_id("redpacket-status")).to_have_text("Not opened yet")
    # and: Alice cannot open her own 1:1 packet: a tap shows its (empty) details
    mine.click()
    expect(alice.by_id("redpacket-no-grabs")).to_be_visible()
    alice.by_id("redpacket-details-close").click()
    # when: Bob taps it and opens it
    bubble.click()
    bob.by_id("redpacket-open").click()
    # then: he sees his amount, and his bubble says he opened it
    expect(bob.by_id("redpacket-amount")).to_have_text("¥8.88")
    # (arriving until the worker credits it: the grab does not wait for the money)
    expect(bob.by_id("redpacket-credit")).to_have_text(
        re.compile("^(Arriving in your wallet|In your wallet)$")
    )
    expect(bubble).to_have_attribute("data-opened", "true")
    bob.screenshot(tmp_path, "redpacket-opened")
    bob.by_id("redpacket-close").click()
    # and: Alice's bubble shows it was opened, live, and the details list Bob
    expect(mine.get_by_test_id("redpacket-status")).to_have_text("Opened")
    expect(mine).to_have_attribute("data-state", "finished")
    mine.click()
    grabs = alice.by_id("redpacket-grab")
    expect(grabs).to_have_count(1)
    expect(grabs.get_by_test_id("redpacket-grab-name")).to_have_text("Bob")
    expect(grabs.get_by_test_id("redpacket-grab-amount")).to_have_text("¥8.88")
    expect(alice.by_id("redpacket-summary")).to_have_text("All taken · 1/1 opened · ¥8.88/¥8.88")
    alice.screenshot(tmp_path, "redpacket-details")
    alice.by_id("redpacket-details-close").click()
    # and: the worker credits Bob; his bubble says so, and his wallet shows the movement
    expect(bubble).to_have_attribute("data-credit", "credited", timeout=CREDIT_TIMEOUT_MS)
    expect(bubble.get_by_test_id("redpacket-status")).to_have_text("Opened · ¥8.88")
    bob.by_id("nav-wallet").click()
    expect(bob.by_id("wallet-balance")).to_have_text("¥8.88")
    expect(bob.by_id("wallet-movement-reason")).to_have_text(["Red packet from Alice"])
    expect(bob.by_id("wallet-movement-amount")).to_have_text(["+¥8.88"])
    alice.by_id("nav-wallet").click()
    expect(alice.by_id("wallet-balance")).to_have_text("¥11.12")
    expect(alice.by_id("wallet-movement-reason")).to_have_text(["Red packet sent", "Top-up"])
    # and: a reload keeps the bubble's state (learnt from the packet's details)
    bob.reload()
    bob.open_chat("Alice")
    expect(bob.by_id("redpacket-bubble")).to_have_attribute("data-opened", "true")
    expect(bob.by_id("redpacket-bubble").get_by_test_id("redpacket-status")).to_have_text(
        "Opened · ¥8.88"
    )
    assert alice.errors == []
    assert bob.errors == []


def test_web_redpacket__lucky_packet_in_a_group__every_opener_sees_it_live_and_the_luckiest(
    browser: Browser, wallet_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: Alice (with money), Bob and Carol in a group, each in a browser
    daphne, _ = wallet_stack
    alice_user, bob_user, carol_user = friends("Alice", "Bob", "Carol")
    fund_wallet(alice_user, 5000)
    alice = ChatPage.login(browser, daphne, alice_user)
    bob = ChatPage.login(browser, daphne, bob_user)
    carol = ChatPage.login(browser, daphne, carol_user)
    alice.create_group("Family", [bob_user, carol_user])
    for member in (bob, carol):
        member.open_chat("Family")
    # when: Alice sends a lucky packet of 1 CNY in 2 shares
    send_packet(alice, "1", "Grab it", shares=2, kind="lucky")
    expect(alice.by_id("redpacket-send-dialog")).to_have_count(0)
    mine = alice.by_id("redpacket-bubble")
    expect(mine.get_by_test_id("redpacket-status")).to_have_text("0/2 opened")
    # then: Bob and Carol each open it and see an amount; together, the whole packet
    amounts = []
    for member in (bob, carol):
        member.by_id("redpacket-bubble").click()
        member.by_id("redpacket-open").click()
        expect(member.by_id("redpacket-amount")).to_be_visible()
        amounts.append(int(member.by_id("redpacket-amount").get_attribute("data-fen") or "0"))
        member.by_id("redpacket-close").click()
    assert sum(amounts) == 100
    assert min(amounts) >= 1
    # and: every bubble, the sender's too, turns to "all taken" live
    expect(mine).to_have_attribute("data-state", "finished")
    expect(mine.get_by_test_id("redpacket-status")).to_have_text("All taken · 2/2 opened")
    for member in (bob, carol):
        expect(member.by_id("redpacket-bubble")).to_have_attribute("data-state", "finished")
    # and: the details show who got how much and the luckiest
    mine.click()
    expect(alice.by_id("redpacket-grab")).to_have_count(2)
    expect(alice.by_id("redpacket-grab-name")).to_have_text(["Bob", "Carol"])
    expect(alice.by_id("redpacket-luckiest")).to_have_count(1)
    luckiest = "Bob" if amounts[0] >= amounts[1] else "Carol"
    expect(
        alice.by_id("redpacket-grab").filter(has=alice.by_id("redpacket-luckiest"))
    ).to_contain_text(luckiest)
    alice.by_id("redpacket-details-close").click()
    assert alice.errors == []
    assert bob.errors == []
    assert carol.errors == []


def test_web_redpacket__bubble_rebuilt_while_pressed__the_tap_still_opens_it(
    browser: Browser, wallet_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: a one-share packet from Alice in a group, shown in Bob's open chat
    daphne, _ = wallet_stack
    alice_user, bob_user, carol_user = friends("Alice", "Bob", "Carol")
    fund_wallet(alice_user, 5000)
    alice = ChatPage.login(browser, daphne, alice_user)
    bob = ChatPage.login(browser, daphne, bob_user)
    alice.create_group("Lanterns", [bob_user, carol_user])
    bob.open_chat("Lanterns")
    send_packet(alice, "1", "Quick", shares=1)
    bubble = bob.by_id("redpacket-bubble")
    expect(bubble).to_have_attribute("data-state", "open")  # its state loaded
    # when: Bob presses on the bubble, Carol takes the share meanwhile (Bob's bubble is
    # rebuilt as "all taken" under his finger), and Bob lets go
    pressed = bubble.element_handle()
    box = bubble.bounding_box()
    assert box is not None
    bob.page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    bob.page.mouse.down()
    carol = login_session(carol_user)
    packet_grab(
        ticket=carol.ticket,
        user_id=carol_user.pk,
        packet_id=int(bubble.get_attribute("data-packet-id") or "0"),
    )
    bob.page.wait_for_function(
        """pressed => !pressed.isConnected && document.querySelector(
            '[data-testid=redpacket-bubble][data-state=finished]')""",
        arg=pressed,
    )
    bob.page.mouse.up()
    # then: the tap was not lost: the packet's details open (it is all taken)
    expect(bob.by_id("redpacket-details-close")).to_be_visible()
    expect(bob.by_id("redpacket-grab-name")).to_have_text(["Carol"])
    assert alice.errors == []
    assert bob.errors == []


def test_web_redpacket__refusals__are_shown_in_the_form(
    browser: Browser, wallet_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: Bob, with an empty wallet, in a chat with Alice
    daphne, _ = wallet_stack
    alice_user, bob_user = friends("Alice", "Bob")
    bob = ChatPage.login(browser, daphne, bob_user)
    bob.open_direct_with(alice_user)
    # when: he sends more than he has, then more than a packet may hold
    send_packet(bob, "5", "For you")
    dialog = bob.by_id("redpacket-send-dialog")
    expect(dialog.get_by_test_id("redpacket-error")).to_have_text(
        "Your wallet balance is too low for this red packet. Top it up in Wallet."
    )
    dialog.get_by_test_id("redpacket-amount-input").fill("abc")
    dialog.get_by_test_id("redpacket-send").click()
    expect(dialog.get_by_test_id("redpacket-error")).to_have_text(
        "Enter an amount in yuan, like 8.88."
    )
    dialog.get_by_test_id("redpacket-amount-input").fill("300")
    dialog.get_by_test_id("redpacket-send").click()
    expect(dialog.get_by_test_id("redpacket-error")).to_have_text("At most ¥200.00 per red packet.")
    # then: nothing was sent
    expect(bob.by_id("redpacket-bubble")).to_have_count(0)
    assert bob.errors == []


def test_web_redpacket__feature_switched_off__no_send_action_but_packets_still_open(
    browser: Browser, wallet_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: Alice sent Bob a packet, then red packets were switched off (a client-visible
    # feature at 0 %: the kill switch's effect on sending)
    daphne, _ = wallet_stack
    alice_user, bob_user = friends("Alice", "Bob")
    fund_wallet(alice_user, 1000)
    session = login_session(alice_user)
    chat = direct_open(ticket=session.ticket, user_id=alice_user.pk, peer_id=bob_user.pk)
    request = PacketRequest(
        conversation_id=chat.pk, client_id="before-the-switch", kind="equal",
        total_amount=500, shares=1, greeting="Before",
    )  # fmt: skip
    packet_send(ticket=session.ticket, user_id=alice_user.pk, request=request)
    make_feature(settings.REDPACKETS_FEATURE, client_visible=True, percentage_bp=0)
    # when: Bob opens the chat
    bob = ChatPage.login(browser, daphne, bob_user)
    bob.open_chat("Alice")
    # then: he has no "Red packet" action, yet he can open the packet already there
    expect(bob.by_id("redpacket-bubble")).to_have_count(1)
    expect(bob.by_id("redpacket-button")).to_be_hidden()
    bob.by_id("redpacket-bubble").click()
    bob.by_id("redpacket-open").click()
    expect(bob.by_id("redpacket-amount")).to_have_text("¥5.00")
    assert bob.errors == []


def test_web_redpacket__crediting_worker_down__amount_arriving__credited_live_when_it_is_back(
    browser: Browser, workerless: tuple[ServerProcess, dict[str, str]], live_log_dir: Path
) -> None:
    # given: Alice sent Bob a packet, and no worker reads the crediting queue
    daphne, env = workerless
    alice_user, bob_user = friends("Alice", "Bob")
    fund_wallet(alice_user, 1000)
    alice = ChatPage.login(browser, daphne, alice_user)
    bob = ChatPage.login(browser, daphne, bob_user)
    alice.open_direct_with(bob_user)
    send_packet(alice, "3.21", "Red envelope")
    bob.open_chat("Alice")
    # when: Bob opens it
    bob.by_id("redpacket-bubble").click()
    bob.by_id("redpacket-open").click()
    # then: the grab succeeds at once; the money is shown arriving, not yet in his wallet
    expect(bob.by_id("redpacket-amount")).to_have_text("¥3.21")
    expect(bob.by_id("redpacket-credit")).to_have_text("Arriving in your wallet")
    bob.by_id("redpacket-close").click()
    bubble = bob.by_id("redpacket-bubble")
    expect(bubble.get_by_test_id("redpacket-status")).to_have_text("Opened · ¥3.21 · arriving")
    bob.by_id("nav-wallet").click()
    expect(bob.by_id("wallet-balance")).to_have_text("¥0.00")
    # when: the crediting worker comes (back)
    bob.show_chats()
    worker = start_celery_worker(
        log_dir=live_log_dir, env=env, queues="payout_fast", name="rp-web-credit"
    )
    try:
        # then: the bubble turns credited live, and the wallet shows the money
        expect(bubble).to_have_attribute("data-credit", "credited", timeout=CREDIT_TIMEOUT_MS)
        expect(bubble.get_by_test_id("redpacket-status")).to_have_text("Opened · ¥3.21")
        bob.by_id("nav-wallet").click()
        expect(bob.by_id("wallet-balance")).to_have_text("¥3.21")
        expect(bob.by_id("wallet-movement-reason")).to_have_text(["Red packet from Alice"])
    finally:
        worker.stop()
    assert alice.errors == []
    assert bob.errors == []
