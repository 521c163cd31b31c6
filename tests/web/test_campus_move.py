"""The web client follows a `move` frame (docs/protocol.md §2a): three campuses
serve at once; the page is served by sh-a, whose links go to the campuses with
access endpoints (sh-b first). Blocking sh-b moves Bob's and Alice's links to
sh-c within seconds; they resume from their sync key and nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from devtools.processes import ServerProcess
from tests.factories import make_friends, make_user
from tests.support.browser import ChatPage, off_loop
from tests.support.campuses import campuses_running, set_blocked
from tests.support.chat import ws_url

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def campuses(
    live_env: dict[str, str], live_log_dir: Path, celery_worker: ServerProcess
) -> Iterator[dict[str, ServerProcess]]:
    # sh-a serves the page and the API but lists no websocket endpoint.
    with campuses_running(env=live_env, log_dir=live_log_dir, listed=("sh-b", "sh-c")) as servers:
        yield servers


def test_web_client__its_campus_blocked__moves_to_another_and_loses_nothing(
    browser: Browser, campuses: dict[str, ServerProcess], tmp_path: Path
) -> None:
    sh_b, sh_c = ws_url(campuses["sh-b"]), ws_url(campuses["sh-c"])
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    # given: Alice and Bob chatting, both linked to sh-b
    alice = ChatPage.login(browser, campuses["sh-a"], alice_user)
    bob = ChatPage.login(browser, campuses["sh-a"], bob_user)
    for user in (alice, bob):
        assert user.state()["endpoint"] == sh_b
    alice.open_direct_with(bob_user)
    alice.send_and_wait("Before the block")
    bob.open_chat("Alice")
    bob.expect_texts(["Before the block"])
    # when: operators block sh-b
    off_loop(set_blocked, "sh-b", True)
    # then: both links move to sh-c and come back online there
    for user in (alice, bob):
        # Connected somewhere else: between the move frame and the close that follows
        # it the link is still up on sh-b.
        user.page.wait_for_function(
            """(blocked) => {
                const state = window.__chat.state();
                return state.moves === 1 && state.connected && state.endpoint !== blocked;
            }""",
            arg=sh_b,
            timeout=20_000,
        )
        state = user.state()
        assert state["endpoint"] == sh_c
        assert state["endpoints"][0] == sh_c
    # and: they keep chatting, each message shown once, in order
    alice.send_and_wait("After the move")
    bob.send_and_wait("Got it")
    bob.expect_texts(["Before the block", "After the move", "Got it"])
    alice.expect_texts(["Before the block", "After the move", "Got it"])
    bob.screenshot(tmp_path, "bob-after-move")
    assert alice.errors == bob.errors == []
    off_loop(set_blocked, "sh-b", False)
