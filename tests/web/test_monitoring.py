"""Operators' dashboards and the web client under the traffic guard, in Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess, start_asgi_server
from tests.factories import PASSWORD, login_session, make_user
from tests.support.browser import VIEWPORT, ChatPage

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def guarded_web(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    server = start_asgi_server(
        log_dir=live_log_dir,
        name="daphne-guard-web",
        env={
            **live_env,
            "MONITORING_GUARD_REPEATS_PER_MINUTE": "10",
            "MONITORING_GUARD_BLOCK_SECONDS": "6",
            "MONITORING_FLUSH_SECONDS": "1",
        },
    )
    yield server
    server.stop()


def test_dashboard__after_traffic__overview_charts_are_not_empty(
    browser: Browser, guarded_web: ServerProcess, tmp_path: Path
) -> None:
    # given: some traffic (requests, a login) and an operator
    operator = make_user(nickname="Ops", email="ops-dash@example.com")
    operator_grant(user=operator)
    session = login_session(make_user())
    for n in range(30):  # each different: progress, so the guard lets it be
        httpx.get(f"{guarded_web.url}/api/accounts/me?n={n}", headers=session.headers)
        httpx.get(f"{guarded_web.url}/api/health?n={n}")
    # when: the operator opens the overview
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{guarded_web.url}/monitoring/")
    page.fill("#id_username", operator.email or "")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Overview")
    # then: within seconds the request charts have points, and the module table lists them
    page.wait_for_function(
        "() => window.__dashboard && window.__dashboard.state().points.requests > 0"
        " && window.__dashboard.state().points.latency > 0",
        timeout=30_000,
    )
    expect(page.get_by_test_id("modules")).to_contain_text("accounts")
    shot = tmp_path / "overview.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    panel = page.get_by_test_id("panel-requests")
    assert int(panel.get_attribute("data-points") or 0) > 0
    expect(panel.locator("canvas")).to_have_count(1)
    context.close()


def test_web_client__traffic_guard_trips__pauses_and_reconnects_only_after_retry_after(
    browser: Browser, guarded_web: ServerProcess
) -> None:
    # given: Alice online
    alice = ChatPage.login(browser, guarded_web, make_user(nickname="Alice"))
    # when: a bug makes her client send the same sync frame in a loop
    alice.page.evaluate(
        "(async () => { for (let i = 0; i < 30; i++) {"
        " try { await window.__chat.request({type: 'sync', key: 0, limit: 1}); }"
        " catch (e) { break; } } })()"
    )
    # then: the server stops it; the client shows it is paused and stays away
    expect(alice.by_id("conn-state")).to_have_attribute("data-state", "paused")
    tripped = time.monotonic()
    alice.page.evaluate("window.__chat.retryNow()")  # even asked to, it does not reconnect
    state = alice.state()
    assert not state["connected"]
    assert state["stoppedUntil"] > 0
    alice.wait_online(timeout=20_000)
    assert time.monotonic() - tripped >= 4  # the block lasted 6 s from the trip
    assert re.match("Online", alice.by_id("conn-text").inner_text())
