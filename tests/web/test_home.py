"""The web client follows `home` (issue 17; docs/protocol.md §2b): a user whose home
is another data centre, answered 421 `home_elsewhere` at login or sent home by a
`home` frame, lands on the home's web client, told why, their login prefilled,
logs in there and chats; no ticket ever travels in a URL, and no page sends the
user round in circles: a `home` frame naming the page's own origin only moves its
link.

Two data centres on this machine (tests/support/datacentres.py): sh and hk, each
with its own database, Redis, ASGI server, relay and replay worker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Request, expect

from accounts.models import User
from devtools.processes import ROOT
from tests.support.browser import ChatPage
from tests.support.datacentres import (
    PASSWORD,
    DataCentre,
    befriend,
    dcs,
    register,
    replicated_user,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.live

__all__ = ["dcs"]


def as_user(registered: dict[str, Any]) -> User:
    """The registered user as ChatPage names them (their rows live in the data
    centres' own databases, not in the test database: this one is never saved)."""
    user = registered["user"]
    return User(id=user["id"], email=registered["email"], nickname=user["nickname"])


def test_web_client__login_at_another_datacentre__lands_at_home_and_chats_there(
    browser: Browser, dcs: list[DataCentre], tmp_path: Path
) -> None:
    sh, hk = dcs
    hal, bea = register(hk, "Hal"), register(hk, "Bea")
    befriend(hal, hk, bea, hk)
    eventually(lambda: replicated_user(sh, hal["user"]["id"]), what="Hal replicated to sh")
    # given: Bea online in hk's web client
    bea_page = ChatPage.open(browser, hk.processes["asgi"], as_user(bea))
    bea_page.fill_login(bea["email"], PASSWORD)
    bea_page.wait_online(timeout=60_000)  # the first page of a busy machine
    # when: Hal, homed in hk, opens sh's web client and logs in
    hal_page = ChatPage.open(browser, sh.processes["asgi"], as_user(hal))
    urls: list[str] = []
    hal_page.page.on("request", lambda request: urls.append(request.url))
    hal_page.fill_login(hal["email"], PASSWORD)
    # then: he lands on hk's web client, told why, his login filled in for him
    expect(hal_page.page).to_have_url(f"{hk.url}/", timeout=20_000)
    expect(hal_page.by_id("login-error")).to_have_text(
        "Your account lives in data centre hk: log in here to continue."
    )
    expect(hal_page.by_id("login-identifier")).to_have_value(hal["email"])
    # when: he logs in there
    hal_page.server = hk.processes["asgi"]
    hal_page.by_id("login-password").fill(PASSWORD)
    hal_page.by_id("login-submit").click()
    # then: he chats with Bea, at home
    hal_page.wait_online()
    hal_page.open_direct_with(as_user(bea))
    hal_page.send_and_wait("Hello from home")
    bea_page.open_chat("Hal")
    bea_page.expect_texts(["Hello from home"])
    bea_page.send_and_wait("Welcome back")
    hal_page.expect_texts(["Hello from home", "Welcome back"])
    # and: no ticket, nor his password, was ever in an address
    ticket = hal_page.page.evaluate("JSON.parse(localStorage.getItem('wc:session')).ticket")
    assert ticket
    assert [url for url in urls if ticket in url or PASSWORD in url] == []
    # and: the address that sent him home carried his login in the fragment only
    # (never sent to a server), and hk's page took it out of the address bar
    home_requests = [url for url in urls if url.startswith(hk.url)]
    assert home_requests
    assert all(hal["email"] not in url for url in home_requests)
    hal_page.screenshot(tmp_path, "hal-at-home")
    assert hal_page.errors == bea_page.errors == []


def test_web_client__stored_session_at_another_datacentre__sent_home_once_and_forgotten(
    browser: Browser, dcs: list[DataCentre]
) -> None:
    sh, hk = dcs
    hal = register(hk, "Hal")
    eventually(lambda: replicated_user(sh, hal["user"]["id"]), what="Hal replicated to sh")
    # given: sh's web client holds a session whose ticket hk issued (its requests
    # are answered 421, its websocket a `home` frame)
    page = ChatPage.open(browser, sh.processes["asgi"], as_user(hal))
    sent: list[Request] = []
    page.page.on("request", lambda request: sent.append(request))
    session = {"ticket": hal["ticket"], "user": hal["user"], "device": hal["device"]}
    page.page.evaluate("(s) => localStorage.setItem('wc:session', JSON.stringify(s))", session)
    # when: the page starts with it
    page.page.reload()
    # then: it goes to hk's web client, Hal's login filled in
    expect(page.page).to_have_url(f"{hk.url}/", timeout=20_000)
    expect(page.by_id("login-identifier")).to_have_value(hal["email"])
    expect(page.by_id("login-error")).to_contain_text("lives in data centre hk")
    assert all(hal["ticket"] not in request.url for request in sent)
    # and: sh forgot the session it cannot serve: opened again, it asks for a login
    # and stays (no redirect without the user)
    again = page.context.new_page()
    again.goto(f"{sh.url}/")
    expect(again.get_by_test_id("login-form")).to_be_visible()
    expect(again).to_have_url(f"{sh.url}/")
    assert again.evaluate("localStorage.getItem('wc:session')") is None


def campus_endpoints_set(dc: DataCentre, endpoints: str) -> None:
    """Set the websocket endpoints dc's own campus publishes in its topology, through
    the audited service, in dc's own database (a process of its own)."""
    code = (
        "from wechat_core.models import Campus; from wechat_core.services import campus_save; "
        f"campus = Campus.objects.get(code={dc.env['CAMPUS']!r}); "
        f"campus.endpoints = {endpoints!r}; campus_save(campus=campus, actor=None)"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=dc.env, check=True, timeout=120,
    )  # fmt: skip


def test_web_client__home_frame_naming_its_own_origin__reconnects_there_and_stays(
    browser: Browser, dcs: list[DataCentre]
) -> None:
    sh, hk = dcs
    hal, bea = register(hk, "Hal"), register(hk, "Bea")
    befriend(hal, hk, bea, hk)
    # given: hk's topology (misconfigured) sends websockets to sh's endpoint
    campus_endpoints_set(hk, sh.ws_url)
    try:
        eventually(
            lambda: httpx.get(f"{hk.url}/api/topology", timeout=10).text.count(sh.ws_url),
            what="hk's topology listing sh",
        )
        # when: Hal logs in at home, in hk's web client (its link goes to sh first)
        page = ChatPage.open(browser, hk.processes["asgi"], as_user(hal))
        page.fill_login(hal["email"], PASSWORD)
        # then: sh's `home` frame names hk, this page's own origin: the page stays,
        # and its link reconnects to hk's endpoint with the same ticket
        page.wait_online(timeout=60_000)
        state = page.state()
        assert state["homes"] == 1
        assert state["endpoint"] == hk.ws_url
        assert state["endpoints"] == [hk.ws_url]
        expect(page.page).to_have_url(f"{hk.url}/")
        # and: he chats
        page.open_direct_with(as_user(bea))
        page.send_and_wait("Linked at home")
    finally:
        campus_endpoints_set(hk, "")
