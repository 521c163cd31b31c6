"""The wallet in the operators' admin: staff see every page, nobody changes money there."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services.operators import operator_grant
from tests.factories import PASSWORD, fund_wallet, make_user
from wallet.models import LedgerAccount, LedgerTransaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_browser() -> Client:
    operator = make_user(email="ops@example.com")
    operator_grant(user=operator)
    browser = Client()
    assert browser.login(username="ops@example.com", password=PASSWORD)
    return browser


def _pages() -> list[str]:
    wallet = fund_wallet(make_user(), 500)
    transaction = LedgerTransaction.objects.latest("pk")
    return [
        "/admin/wallet/ledgeraccount/",
        f"/admin/wallet/ledgeraccount/{wallet.pk}/change/",
        "/admin/wallet/ledgertransaction/",
        f"/admin/wallet/ledgertransaction/{transaction.pk}/change/",
        "/admin/wallet/topup/",
        "/admin/wallet/withdrawal/",
    ]


def test_wallet_admin__operator__reads_every_page_with_the_postings(
    operator_browser: Client,
) -> None:
    pages = _pages()
    for path in pages:
        assert operator_browser.get(path).status_code == 200, path
    transaction = operator_browser.get(pages[3]).content.decode()
    assert "500" in transaction
    assert "-500" in transaction


def test_wallet_admin__chat_user__is_sent_to_the_login_page() -> None:
    browser = Client()
    browser.force_login(make_user())
    for path in _pages():
        assert browser.get(path).status_code == 302


def test_wallet_admin__nothing_can_be_added_changed_or_deleted(operator_browser: Client) -> None:
    wallet = fund_wallet(make_user(), 500)
    assert operator_browser.get("/admin/wallet/ledgeraccount/add/").status_code == 403
    assert (
        operator_browser.get(f"/admin/wallet/ledgeraccount/{wallet.pk}/delete/").status_code == 403
    )
    response = operator_browser.post(
        f"/admin/wallet/ledgeraccount/{wallet.pk}/change/", {"reference": "x"}
    )
    assert response.status_code == 403
    assert LedgerAccount.objects.get(pk=wallet.pk).balance == 500
