"""The wallet page of the web client, in headless Chromium: a top-up paid on the payment
sandbox's own page, then a withdrawal, with the balance and the history following."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from devtools.processes import ServerProcess
from tests.factories import make_user
from tests.support.browser import ChatPage
from tests.support.paysandbox import Sandbox

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_web_wallet__top_up_on_the_pay_page_then_withdraw__balance_and_history_follow(
    browser: Browser,
    wallet_stack: tuple[ServerProcess, ServerProcess],
    paysandbox: Sandbox,
    tmp_path: Path,
) -> None:
    # given: Alice, new, on her wallet page
    paysandbox.reset()
    daphne, _ = wallet_stack
    alice = ChatPage.login(browser, daphne, make_user(nickname="Alice"))
    alice.by_id("nav-wallet").click()
    expect(alice.by_id("wallet-balance")).to_have_text("¥0.00")
    expect(alice.by_id("wallet-history-empty")).to_be_visible()
    # when: she tops up 12.34 CNY and pays on the provider's page, which opens beside
    alice.by_id("wallet-topup-amount").fill("12.34")
    with alice.context.expect_page() as opened:
        alice.by_id("wallet-topup-button").click()
    pay_page = opened.value
    pay_page.wait_for_url(f"{paysandbox.url}/pay/page?prepay_id=*")
    expect(pay_page.get_by_test_id("pay-amount")).to_have_text("¥12.34")
    expect(alice.by_id("wallet-order-text")).to_have_text(
        "Waiting for your payment on the pay page…"
    )
    pay_page.get_by_test_id("pay-button").click()
    expect(pay_page.get_by_test_id("pay-done")).to_be_visible()
    # then: the notification reaches the server, and her page shows the money
    expect(alice.by_id("wallet-balance")).to_have_text("¥12.34", timeout=30_000)
    expect(alice.by_id("wallet-side-balance")).to_have_text("¥12.34")
    expect(alice.by_id("wallet-order-text")).to_have_text("Top-up received.")
    expect(alice.by_id("wallet-movement-reason")).to_have_text(["Top-up"])
    expect(alice.by_id("wallet-movement-amount")).to_have_text(["+¥12.34"])
    alice.screenshot(tmp_path, "wallet-topped-up")
    # when: she withdraws 2 CNY
    alice.by_id("wallet-withdraw-amount").fill("2")
    alice.by_id("wallet-withdraw-button").click()
    # then: it leaves at once, and the worker pays it out
    expect(alice.by_id("wallet-balance")).to_have_text("¥10.34")
    expect(alice.by_id("wallet-order-text")).to_have_text("Withdrawal paid out.", timeout=30_000)
    expect(alice.by_id("wallet-movement-reason")).to_have_text(
        ["Withdrawal to your WeChat Pay balance", "Top-up"]
    )
    minus = "\u2212"  # the page's minus sign
    expect(alice.by_id("wallet-movement-amount")).to_have_text([f"{minus}¥2.00", "+¥12.34"])
    # and: the chats come back as they were, and the wallet again
    alice.show_chats()
    expect(alice.by_id("wallet-page")).to_have_count(0)
    alice.by_id("nav-wallet").click()
    expect(alice.by_id("wallet-balance")).to_have_text("¥10.34")
    assert alice.errors == []


def test_web_wallet__amount_that_is_not_money__is_refused_in_the_page(
    browser: Browser, wallet_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    daphne, _ = wallet_stack
    alice = ChatPage.login(browser, daphne, make_user(nickname="Alice"))
    alice.by_id("nav-wallet").click()
    expect(alice.by_id("wallet-balance")).to_have_text("¥0.00")
    alice.by_id("wallet-withdraw-amount").fill("1.234")
    alice.by_id("wallet-withdraw-button").click()
    expect(alice.by_id("toast")).to_have_text("Enter an amount in yuan, like 12.50.")
    alice.by_id("wallet-withdraw-amount").fill("5")
    alice.by_id("wallet-withdraw-button").click()
    expect(alice.by_id("toast")).to_have_text("The balance is too low for this.")
    assert alice.errors == []
