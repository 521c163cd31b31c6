"""The developer console: login required, only one's own accounts, the secret shown
once, the server saved only after the handshake, the delivery log; the admin for
operators; and the per-account slots that keep one slow server from the others."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client

from devtools.devservers import raw_app, raw_server, serve, werobot_server
from devtools.processes import start_asgi_server
from publicplatform.concurrency import slot_acquire, slot_release
from publicplatform.exceptions import ServerVerificationFailed
from publicplatform.models import OfficialAccount
from tests.factories import PASSWORD, configure_server, make_official_account, make_user

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


def test_console__verification_fails_on_an_internal_page__its_body_is_never_shown() -> None:
    # given: a URL whose server answers 200 with a page that is not the echostr, as an
    # internal service would (a user reading internal pages through our handshake)
    secret = "db_password=hunter2-internal"

    def internal(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"<html>{secret}</html>".encode()]

    bob = make_user()
    account, _ = make_official_account(owner=bob)
    form = {"action": "server", "token": TOKEN, "encoding_aes_key": "", "encryption_mode": "plain"}
    with serve(internal) as server:
        # when: the developer saves it
        page = logged_in(bob).post(
            f"/platform/accounts/{account.pk}/", form | {"server_url": server.url}
        )
        with pytest.raises(ServerVerificationFailed) as refused:
            configure_server(account, url=server.url, token=TOKEN)
    # then: refused with the status and the time it took, and not a byte of the body
    html = page.content.decode()
    assert "Verification failed" in html
    assert "status: 200" in html
    assert secret not in html
    assert secret not in repr(refused.value.details)
    assert secret not in refused.value.message
    assert refused.value.details["status_code"] == 200
    assert refused.value.details["latency_ms"] >= 0


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


# --- Console calls and the database pool (issue 11 item 2) ------------------------------


def console_client(server_url: str, user: Any) -> httpx.Client:
    """An HTTP client of a live server, logged in to the console as `user`."""
    browser = Client()
    browser.force_login(user)
    return httpx.Client(
        base_url=server_url, cookies={"sessionid": browser.cookies["sessionid"].value}, timeout=90
    )


def post_form(http: httpx.Client, path: str, fields: dict[str, str]) -> httpx.Response:
    """GET the page for its CSRF token, then POST the form, as a browser does."""
    page = http.get(path)
    assert page.status_code == 200, page.text[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    return http.post(path, data=fields | {"csrfmiddlewaretoken": token.group(1)})


def wait_until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.05)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_console_live__tests_of_webhooks_held_by_a_slow_server__other_users_are_still_served(
    live_env: dict[str, str], live_log_dir: Path
) -> None:
    # given: a server process whose database pool has 4 connections (waiting 2 s for
    # one), one console call per account at a time, and six accounts whose server
    # passes the handshake but holds every push until the test lets it answer
    gate = threading.Event()
    answer = raw_app(token=TOKEN, post=lambda: ("200 OK", b"success"))

    def slow(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST":
            gate.wait(60)
        return answer(environ, start_response)

    env = live_env | {
        "DATABASE_POOL_MIN_SIZE": "1", "DATABASE_POOL_MAX_SIZE": "4",
        "DATABASE_POOL_TIMEOUT": "2", "PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS": "60",
        "PUBLICPLATFORM_CONSOLE_CALLS_PER_ACCOUNT": "1",
    }  # fmt: skip
    daphne = start_asgi_server(log_dir=live_log_dir, env=env, name="daphne-console")
    bob, carol = make_user(nickname="Bob"), make_user(nickname="Carol")
    shops = [make_official_account(owner=bob, name=f"Shop {n}")[0] for n in range(6)]
    try:
        with serve(slow) as developer, ThreadPoolExecutor(max_workers=6) as pool:
            try:
                for shop in shops:
                    configure_server(shop, url=developer.url, token=TOKEN)
                # when: Bob tests the webhook of each account at once (more calls than
                # the pool has connections), and they wait on his server
                tests = [
                    pool.submit(post_form, console_client(daphne.url, bob), page, {"text": "hi"})
                    for page in (f"/platform/accounts/{shop.pk}/test/" for shop in shops)
                ]
                wait_until(lambda: len(developer.posts()) >= 4)
                # then: another user's console page is served meanwhile
                other = console_client(daphne.url, carol).get("/platform/")
                assert other.status_code == 200, other.text[:300]
                # and: every test reached the server; a second one of the same account
                # is refused at once with a reason
                wait_until(lambda: len(developer.posts()) == 6)
                again = post_form(
                    console_client(daphne.url, bob), f"/platform/accounts/{shops[0].pk}/test/",
                    {"text": "again"},
                )  # fmt: skip
                assert again.status_code == 200
                assert "of this account&#x27;s server are running; try again when they end" in (
                    again.text
                )
            finally:
                gate.set()  # the server answers every held push now
            pages = [test.result(timeout=60) for test in tests]
        assert [page.status_code for page in pages] == [200] * 6
        assert all('data-testid="test-result"' in page.text for page in pages)
        assert len(developer.posts()) == 6
    finally:
        gate.set()
        daphne.stop()


def test_console__menu_editor__shows_the_menu_saves_a_group_and_explains_a_refusal() -> None:
    # given: Bob's account with a one-button menu
    bob = make_user(nickname="Bob")
    account, _ = make_official_account(owner=bob)
    account.menu = [{"type": "click", "name": "Today", "key": "TODAY"}]
    account.save(update_fields=["menu"])
    client = logged_in(bob)
    url = f"/platform/accounts/{account.pk}/"
    # when: he opens the account page
    page = client.get(url).content.decode()
    # then: the menu as a list and in the editor, not as a Python repr
    assert "{'type'" not in page
    assert 'data-testid="menu-tree"' in page
    assert 'name="t0_name" value="Today"' in page
    # when: he keeps the button and adds a group of two links
    form = {"action": "menu", "t0_name": "Today", "t0_type": "click", "t0_value": "TODAY"}
    form |= {"t1_name": "Links", "t1s0_name": "Site", "t1s0_type": "view"}
    form |= {"t1s0_value": "https://example.com/", "t1s1_name": "Key", "t1s1_type": "click"}
    form |= {"t1s1_value": "K1"}
    client.post(url, form)
    # then: the menu is saved as the API would have saved it
    account.refresh_from_db()
    assert account.menu == [
        {"type": "click", "name": "Today", "key": "TODAY"},
        {
            "name": "Links",
            "sub_button": [
                {"type": "view", "name": "Site", "url": "https://example.com/"},
                {"type": "click", "name": "Key", "key": "K1"},
            ],
        },
    ]
    # when: a view button without an http(s) URL is saved
    refused = client.post(url, form | {"t1s0_value": "javascript:alert(1)"}).content.decode()
    # then: refused with the reason, the menu unchanged, his input kept to correct
    assert "invalid view url" in refused
    assert 'value="javascript:alert(1)"' in refused
    account.refresh_from_db()
    assert account.menu[1]["sub_button"][0]["url"] == "https://example.com/"
