"""The developer console: login required, only one's own accounts, the secret shown
once, the server saved only after the handshake, the delivery log; the admin for
operators; and the per-account slots that keep one slow server from the others."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from publicplatform.concurrency import slot_acquire, slot_release
from publicplatform.models import OfficialAccount
from tests.factories import PASSWORD, make_official_account, make_user
from tests.support.devservers import raw_server, werobot_server

pytestmark = pytest.mark.django_db
TOKEN = "testtoken123"


def logged_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.email, password=PASSWORD)
    return client


def test_console__anonymous__is_sent_to_the_login_page() -> None:
    response = Client().get("/platform/")
    assert response.status_code == 302
    assert response["Location"].startswith("/platform/login/")


def test_console__create_account__secret_shown_once_and_others_cannot_see_it() -> None:
    # given
    bob, eve = make_user(nickname="Bob"), make_user(nickname="Eve")
    client = logged_in(bob)
    # when
    created = client.post("/platform/", {"name": "Bob's shop", "description": "", "greeting": "Hi"})
    page = client.get(created["Location"]).content.decode()
    again = client.get(created["Location"]).content.decode()
    # then
    account = OfficialAccount.objects.get(owner=bob)
    secret = re.search(r'data-testid="new-secret">([0-9a-f]{32})<', page)
    assert secret is not None
    assert secret.group(1) not in again
    assert re.fullmatch(r"wx[0-9a-f]{16}", account.appid)
    assert re.fullmatch(r"gh_[0-9a-f]{12}", account.original_id)
    assert logged_in(eve).get(f"/platform/accounts/{account.pk}/").status_code == 404


def test_console__server_form__saved_only_when_the_handshake_passes() -> None:
    bob = make_user()
    account, _ = make_official_account(owner=bob)
    client = logged_in(bob)
    url = f"/platform/accounts/{account.pk}/"
    form = {"action": "server", "token": TOKEN, "encoding_aes_key": "", "encryption_mode": "plain"}
    with raw_server(token=TOKEN, post=lambda: ("200 OK", b"")) as good:
        client.post(url, form | {"server_url": good.url})
    account.refresh_from_db()
    assert account.server_url == good.url
    assert account.server_verified_at is not None
    with werobot_server("othertoken1") as wrong:
        page = client.post(url, form | {"server_url": wrong.url}).content.decode()
    account.refresh_from_db()
    assert account.server_url == good.url  # unchanged
    assert "Verification failed" in page
    assert "expected signature" in page


def test_console__delivery_log__shows_each_attempt() -> None:
    from publicplatform.services import webhooks
    from publicplatform.services.followers import account_follow
    from tests.factories import configure_server, login_ticket

    bob = make_user()
    account, _ = make_official_account(owner=bob)
    with raw_server(token=TOKEN, post=lambda: ("502 Bad Gateway", b"upstream down")) as server:
        configure_server(account, url=server.url, token=TOKEN)
        fan = make_user()
        account_follow(ticket=login_ticket(fan), user_id=fan.pk, account_id=account.pk)
        from publicplatform.models import WebhookDelivery

        delivery = WebhookDelivery.objects.get(account=account)
        while webhooks.delivery_step(delivery_id=delivery.pk).retry_in is not None:
            pass
    page = logged_in(bob).get(f"/platform/accounts/{account.pk}/deliveries/").content.decode()
    assert page.count('data-testid="attempt"') == 3
    assert "upstream down" in page
    assert "HTTP 502" in page


def test_admin__operator_creates_an_account__gets_its_secret_once() -> None:
    from accounts.services.operators import operator_grant

    ops = make_user()
    operator_grant(user=ops, superuser=True)
    client = logged_in(ops)
    response = client.post(
        "/admin/publicplatform/officialaccount/add/",
        {
            "name": "City Hall",
            "description": "",
            "greeting": "",
            "open_platform_id": "",
            "is_active": "on",
            "auto_replies-TOTAL_FORMS": "0",
            "auto_replies-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    account = OfficialAccount.objects.get(name="City Hall")
    assert f"AppSecret of {account.appid}" in response.content.decode()
    assert account.service_user.nickname == "City Hall"


def test_admin__keyword_rule_with_a_bad_regex__is_refused_and_nothing_saved() -> None:
    # given: an operator editing an account in the admin
    from accounts.services.operators import operator_grant
    from publicplatform.models import AutoReply

    ops = make_user()
    operator_grant(user=ops, superuser=True)
    account, _ = make_official_account(name="Museum")
    form = {
        "name": "Museum", "description": "", "greeting": "", "open_platform_id": "",
        "is_active": "on", "auto_replies-TOTAL_FORMS": "1", "auto_replies-INITIAL_FORMS": "0",
        "auto_replies-0-match": "regex", "auto_replies-0-pattern": "(unclosed",
        "auto_replies-0-reply": "never", "auto_replies-0-position": "0",
    }  # fmt: skip
    # when
    response = logged_in(ops).post(
        f"/admin/publicplatform/officialaccount/{account.pk}/change/", form
    )
    # then: the form comes back with the reason, and no rule exists
    assert response.status_code == 200
    assert "Does not compile" in response.content.decode()
    assert not AutoReply.objects.filter(account=account).exists()


def test_slots__per_account_limit__refuses_beyond_it_frees_on_release_and_expires() -> None:
    # given: a limit of two
    first = slot_acquire(account_id=990001, limit=2, hold_seconds=30)
    second = slot_acquire(account_id=990001, limit=2, hold_seconds=30)
    # then: a third waits, another account does not
    assert first is not None
    assert second is not None
    assert slot_acquire(account_id=990001, limit=2, hold_seconds=30) is None
    other = slot_acquire(account_id=990002, limit=2, hold_seconds=30)
    assert other is not None
    # when: one is released, a slot is free again
    slot_release(account_id=990001, token=first)
    third = slot_acquire(account_id=990001, limit=2, hold_seconds=30)
    assert third is not None
    # and: slots held past hold_seconds (a dead worker's) lapse
    assert slot_acquire(account_id=990001, limit=2, hold_seconds=0.0) is not None
    for account_id, token in ((990001, second), (990001, third), (990002, other)):
        slot_release(account_id=account_id, token=token)
