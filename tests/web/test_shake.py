"""The shake page in headless Chromium (seed 004; docs/shake.md "The web client's
shake page"): a user shakes, wins a sponsor packet, sees the sponsor, opens it (the
crediting worker puts it in the wallet), forwards its extra shares into a group where
another user grabs one; and the page protects the server by itself: one request per
interval the server hands out (longer in a busy tier), none once the user is capped.

The stack is a daphne running the shake engine (a registry of its own) with a
1-second interval (3 s when busy: more than 2 shakes in a second), and a Celery worker
on the payout queues with a private broker, so credits run on a real `payout_fast`
worker. The busy tier comes from real load: another user's client shaking as fast as
it can over HTTP."""

from __future__ import annotations

import base64
import io
import itertools
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Browser, Request, expect

from devtools.processes import ServerProcess, start_asgi_server, start_celery_worker, start_redis
from shake.models import Business, Round
from shake.schedule import stagger_group
from shake.services.activities import (
    PrizePlan,
    RoundPlan,
    SponsorPlan,
    activity_approve,
    activity_create,
    business_create,
)
from shake.services.assets import asset_store, assets_push_run
from shake.services.control import round_start
from tests.factories import login_session, make_friends, make_user
from tests.shake.conftest import BUSINESS_SECRET
from tests.support.browser import ChatPage, off_loop
from tests.support.businesses import BusinessServer
from tests.support.waiting import eventually

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

HELD = "/api/shake/assets/held"
CREDIT_TIMEOUT_MS = 30_000  # the worker's queue, then the page's next "open again"
# Without an asset in the manifest, logos are shown from `logo_url`; the page's CSP
# allows our origin, data: and blob:, so a data: logo.
LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="56" height="56">'
    '<rect width="56" height="56" fill="#fc0"/></svg>'
)
LOGO = "data:image/svg+xml;base64," + base64.b64encode(LOGO_SVG.encode()).decode()
SHAKE_WEB_ENV = {
    "SHAKE_ENGINE_THREAD": "true",
    "SHAKE_INTERVAL_SECONDS": "1",
    "SHAKE_BUSY_INTERVAL_SECONDS": "3",
    "SHAKE_BUSY_SHAKES_PER_SECOND": "2",
    # The flooding client repeats one request on purpose: the traffic guard would
    # block it (429) before the engine counts it as load.
    "MONITORING_GUARD_ENABLED": "false",
}


@pytest.fixture(scope="module")
def shake_stack(
    live_env: dict[str, str], live_log_dir: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A daphne running the shake engine and a payout worker, on a private broker."""
    broker = start_redis(log_dir=live_log_dir)
    env = (
        live_env
        | SHAKE_WEB_ENV
        | {
            "SHAKE_REGISTRY": f"shake-web-{uuid.uuid4().hex[:8]}",
            "CELERY_BROKER_URL": f"{broker.url}/0",
            "CELERY_RESULT_BACKEND": f"{broker.url}/0",
        }
    )
    daphne = start_asgi_server(log_dir=live_log_dir, env=env, name="daphne-shake-web")
    worker = start_celery_worker(
        log_dir=live_log_dir, env=env, queues="payout_fast,payout_slow", name="shake-web"
    )
    yield daphne, worker
    worker.stop()
    daphne.stop()
    broker.stop()


def sponsor_packet_round(logo: str = LOGO) -> Round:
    """An activity of one sponsor whose running round's pool holds exactly one
    prize: a sponsor packet of 1.88 CNY with 2 extra shares worth 1 CNY together."""
    activity = activity_create(
        name="Gala",
        sponsors=[SponsorPlan("Red Star Beer", logo, "#c00")],
        rounds=[
            RoundPlan(
                title="Round 1",
                planned_start=timezone.now() - timedelta(seconds=1),
                duration_seconds=600,
                issue_rate=1000,
                prizes=(
                    PrizePlan(
                        sponsor=0, count=1, total=188, kind="sponsor",
                        extra_shares=2, extra_total=100,
                    ),
                ),
            )
        ],
    )  # fmt: skip
    activity_approve(activity_id=activity.pk)
    return activity.rounds.get()


def waiting_round() -> Round:
    """Three sponsors' cash packets (cap 3, 1 per sponsor) in a round loaded now whose
    countdown runs 10 minutes: it starts when the operators say so."""
    now = timezone.now()
    activity = activity_create(
        name="Gala",
        sponsors=[SponsorPlan(name, LOGO) for name in ("Beer", "Phones", "Air")],
        rounds=[
            RoundPlan(
                title="Round 1",
                planned_start=now,
                latest_start=now + timedelta(minutes=10),
                duration_seconds=600,
                issue_rate=1000,
                prizes=tuple(PrizePlan(sponsor=i, count=20, total=20 * 50) for i in range(3)),
            )
        ],
    )
    activity_approve(activity_id=activity.pk)
    return activity.rounds.get()


def open_shake_page(page: ChatPage) -> None:
    page.by_id("nav-shake").click()
    expect(page.by_id("shake-page")).to_be_visible()


def shake_log(page: ChatPage) -> dict[str, Any]:
    return dict(page.page.evaluate("window.__chat.shake()"))


def wait_idle(page: ChatPage, answers: int) -> int:
    """Until the page has had more than `answers` shake answers and has nothing more
    to send (no request in flight, no shake waiting for its interval); their number."""
    page.page.wait_for_function(
        "(n) => { const s = window.__chat.shake();"
        " return s.answers.length > n && s.answers.every((a) => a.answeredAt !== null)"
        " && !s.inFlight && !s.wanting; }",
        arg=answers,
        timeout=30_000,
    )
    return len(shake_log(page)["answers"])


def test_web_shake__win_a_sponsor_packet__open__forward_the_shares__a_group_member_grabs_one(
    browser: Browser, shake_stack: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    # given: a running round whose pool holds one sponsor packet with 2 extra shares;
    # Alice and Bob, friends, each in a browser, in a group "Family"
    daphne, _ = shake_stack
    sponsor_packet_round()
    alice_user, bob_user = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice_user, bob_user)
    alice = ChatPage.login(browser, daphne, alice_user)
    bob = ChatPage.login(browser, daphne, bob_user)
    alice.create_group("Family", [bob_user])
    bob.open_chat("Family")
    # when: Alice opens the shake page: the round is on
    open_shake_page(alice)
    expect(alice.by_id("shake-schedule")).to_have_attribute("data-state", "running")
    expect(alice.by_id("shake-schedule")).to_contain_text("Round on · ends in")
    # and: she shakes (the button) until she wins (the engine reserves ahead)
    answered = 0
    while not alice.by_id("shake-prize").count():
        assert answered < 20, "no win"
        alice.by_id("shake-button").click()
        answered = wait_idle(alice, answered)
    # then: the result card names the sponsor, with its logo and background
    expect(alice.by_id("shake-won")).to_have_text("You won a red packet from Red Star Beer!")
    card = alice.by_id("shake-prize")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("shake-sponsor-name")).to_have_text("Red Star Beer")
    expect(card).to_have_attribute("data-background", "#c00")
    logo = card.get_by_test_id("shake-sponsor-logo")
    expect(logo).to_have_attribute("src", LOGO)
    alice.page.wait_for_function(
        "() => document.querySelector('[data-testid=shake-sponsor-logo]').naturalWidth > 0"
    )
    alice.screenshot(tmp_path, "shake-won")
    # when: she opens it (拆), the page's requests about the packet counted
    opening: list[Request] = []
    asked = re.compile(r"/api/shake/(open|packets/\d+)$")
    alice.page.on("request", lambda r: opening.append(r) if asked.search(r.url) else None)
    card.get_by_test_id("shake-open").click()
    # then: the amount, arriving, then in her wallet once the worker credits it
    expect(card.get_by_test_id("shake-amount")).to_have_text("¥1.88")
    expect(card.get_by_test_id("shake-credit")).to_have_text(
        "In your wallet", timeout=CREDIT_TIMEOUT_MS
    )
    # and: opened once; the credit was learnt by reading the packet, not opening again
    assert [r.method for r in opening if r.url.endswith("/api/shake/open")] == ["POST"]
    assert {r.method for r in opening if "/api/shake/packets/" in r.url} <= {"GET"}
    # when: she forwards the 2 extra shares into "Family"
    card.get_by_test_id("shake-forward").click()
    dialog = alice.by_id("shake-forward-dialog")
    dialog.get_by_test_id("shake-forward-greeting").fill("From the Gala")
    dialog.get_by_test_id("shake-forward-chat").filter(has_text="Family").click()
    expect(dialog).to_have_count(0)
    expect(card.get_by_test_id("shake-forwarded")).to_have_text("2 share(s) sent to Family.")
    # then: Bob's open group chat gets the red packet live; he grabs one share
    bubble = bob.by_id("redpacket-bubble")
    expect(bubble).to_have_count(1)
    expect(bubble.get_by_test_id("redpacket-greeting")).to_have_text("From the Gala")
    # Tapped until its dialog shows: a full run once lost the tap (the dialog never
    # opened in 10 s) while the chat was re-rendering around the new bubble.
    for _ in range(3):
        bubble.click()
        try:
            expect(bob.by_id("redpacket-open")).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            continue
    bob.by_id("redpacket-open").click()
    expect(bob.by_id("redpacket-amount")).to_be_visible()
    grabbed = int(bob.by_id("redpacket-amount").get_attribute("data-fen") or "0")
    assert 1 <= grabbed <= 99
    bob.by_id("redpacket-close").click()
    # and: Alice's wallet shows the prize (the shares went through it to the packet)
    alice.by_id("nav-wallet").click()
    expect(alice.by_id("wallet-balance")).to_have_text("¥1.88")
    expect(alice.by_id("wallet-movement-reason").filter(has_text="Shake prize")).to_have_count(1)
    assert alice.errors == []
    assert bob.errors == []


def coupon_activity(business: Business) -> Round:
    """A running round whose pool holds one coupon of `business` worth 5 CNY."""
    activity = activity_create(
        name="Gala",
        sponsors=[SponsorPlan("Ride Co", LOGO)],
        rounds=[
            RoundPlan(
                title="Round 1",
                planned_start=timezone.now() - timedelta(seconds=1),
                duration_seconds=600,
                issue_rate=1000,
                prizes=(
                    PrizePlan(
                        sponsor=0, count=1, total=500, kind="coupon",
                        business=business.pk, coupon="ride-5",
                    ),
                ),
            )
        ],
    )  # fmt: skip
    activity_approve(activity_id=activity.pk)
    return activity.rounds.get()


def test_web_shake__a_coupon_won__deferred_without_an_account__retried__delivered(
    browser: Browser, shake_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: a business (a real local HTTP server) where nobody has an account yet,
    # and a running round whose pool holds one of its coupons
    daphne, _ = shake_stack
    shop = BusinessServer(secret=BUSINESS_SECRET, accounts=set()).start()
    try:
        business = business_create(
            name="Ride Co", endpoint=shop.url, secret=BUSINESS_SECRET, rate_per_second=100
        )
        coupon_activity(business)
        alice_user = make_user(nickname="Alice")
        alice = ChatPage.login(browser, daphne, alice_user)
        open_shake_page(alice)
        # when: Alice shakes until she wins, and opens it
        answered = 0
        while not alice.by_id("shake-prize").count():
            assert answered < 20, "no win"
            alice.by_id("shake-button").click()
            answered = wait_idle(alice, answered)
        expect(alice.by_id("shake-won")).to_have_text("You won a coupon from Ride Co!")
        card = alice.by_id("shake-prize")
        expect(card).to_contain_text("Coupon")
        card.get_by_test_id("shake-open").click()
        # then: its face value, and not "in your wallet": it goes to the business, which
        # has no account for her, so it waits for her with a retry
        expect(card.get_by_test_id("shake-amount")).to_have_text("¥5.00")
        expect(card.get_by_test_id("shake-credit")).to_have_count(0)
        coupon = card.get_by_test_id("shake-coupon")
        expect(coupon).to_have_attribute("data-state", "deferred", timeout=CREDIT_TIMEOUT_MS)
        expect(coupon).to_have_text("You have no Ride Co account yet: open one there, then retry.")
        # when: she opens an account at the business and retries
        shop.open_account(alice_user.pk)
        card.get_by_test_id("shake-coupon-retry").click()
        # then: delivered, once
        expect(coupon).to_have_attribute("data-state", "delivered", timeout=CREDIT_TIMEOUT_MS)
        expect(coupon).to_have_text("Coupon delivered to your Ride Co account.")
        expect(card.get_by_test_id("shake-coupon-retry")).to_have_count(0)
        assert [a.answer for a in shop.log()] == ["no_account", "ok"]
        assert alice.errors == []
    finally:
        shop.stop()


def test_web_shake__one_request_per_interval__wider_when_busy__stops_by_itself_at_the_cap(
    browser: Browser, shake_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: a round loaded with its countdown running; Alice on the shake page, the
    # requests her page sends counted as Chromium sends them
    daphne, _ = shake_stack
    round_ = waiting_round()
    alice = ChatPage.login(browser, daphne, make_user(nickname="Alice"))
    posts: list[Request] = []
    alice.page.on(
        "request",
        lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/api/shake") else None,
    )
    open_shake_page(alice)
    # then: the countdown to the next round, before any shake
    schedule = alice.by_id("shake-schedule")
    expect(schedule).to_have_attribute("data-state", "waiting")
    expect(schedule).to_have_text(re.compile(r"^Next round in [5-9]m \d\ds$"))
    assert posts == []
    # when: she shakes her phone (device motion) before the round
    alice.page.evaluate(
        "window.dispatchEvent(new DeviceMotionEvent('devicemotion',"
        " {acceleration: {x: 30, y: 4, z: 0}, interval: 16}))"
    )
    answered = wait_idle(alice, 0)
    # then: the sensors answer without asking here (no "Shake with your phone" button)
    expect(alice.by_id("shake-motion-enable")).to_be_hidden()
    # and: one request, nothing to win yet, the normal interval
    expect(alice.by_id("shake-nothing")).to_have_text("No round is on: nothing to win right now.")
    first = shake_log(alice)["answers"][0]
    assert answered == 1
    assert (first["interval"], first["tier"], first["result"]) == (1, 0, "nothing")
    # when: the operators start the round, and another user floods the server
    off_loop(round_start, round_id=round_.pk, actor=None, reason="on air")
    bob = login_session(make_user(nickname="Bob"))
    with httpx.Client(base_url=daphne.url, headers=bob.headers, timeout=30) as peek:
        eventually(
            lambda: peek.get("/api/shake/schedule").json()["round"] == round_.pk,
            what="the round running on the server",
        )
    stop, busy = threading.Event(), threading.Event()
    flooders = [
        threading.Thread(target=flood, args=(daphne.url, bob.headers, stop, busy), daemon=True)
        for _ in range(3)
    ]
    for thread in flooders:
        thread.start()
    try:
        assert busy.wait(60), "the flood never made the server busy"
        # and: Alice keeps shaking, five times after every answer, until the page stops
        while not shake_log(alice)["capped"]:
            assert answered < 20, "never capped"
            for _ in range(5):
                alice.page.keyboard.press("Space")
            answered = wait_idle(alice, answered)
            last = shake_log(alice)["answers"][-1]
            if last["tier"] == 1 and not shake_log(alice)["capped"]:
                # then: a busy answer is shown with its tier and its longer interval
                expect(alice.by_id("shake-tier")).to_have_text(
                    "The server is busy: tier 1, one shake every 3 s."
                )
    finally:
        stop.set()
        for thread in flooders:
            thread.join(timeout=30)
    # then: it stopped by itself: capped, the button off, nothing waiting to be sent
    expect(alice.by_id("shake-status")).to_have_attribute("data-state", "capped")
    expect(alice.by_id("shake-button")).to_be_disabled()
    log = shake_log(alice)
    wins = [a for a in log["answers"] if a["result"] == "packet"]
    assert len(wins) == 3
    expect(alice.by_id("shake-prize")).to_have_count(3)
    # when: she shakes on (space bar, three times)
    for _ in range(3):
        alice.page.keyboard.press("Space")
    expect(alice.by_id("shake-count")).to_have_text(str(log["shakes"] + 3))
    # then: the page counts her shakes but sends nothing more
    after = shake_log(alice)
    assert (after["sent"], after["wanting"], after["waiting"]) == (log["sent"], False, False)
    assert len(posts) == after["sent"] == len(after["answers"])
    # and: many shakes, one request per answer; each request at least the previous
    # answer's interval after it (3 s after a busy one), as Chromium timed them
    assert after["shakes"] > 2 * len(posts)
    starts = [r.timing["startTime"] for r in posts]
    intervals = [a["interval"] for a in after["answers"]]
    gaps = [round((b - a) / 1000, 2) for a, b in itertools.pairwise(starts)]
    tiers = [a["tier"] for a in after["answers"]]
    print(f"shake page: {after['shakes']} shakes, {len(posts)} requests, gaps {gaps} s")
    print(f"  after answers of intervals {intervals} s, tiers {tiers}")
    for index in range(1, len(posts)):
        assert starts[index] - starts[index - 1] >= intervals[index - 1] * 1000 - 50, (
            index,
            starts,
            intervals,
        )
    assert any(a["tier"] == 1 and a["interval"] == 3 for a in after["answers"][:-1]), (
        "no busy answer was followed by another shake"
    )
    assert alice.errors == []


def flood(url: str, headers: dict[str, str], stop: threading.Event, busy: threading.Event) -> None:
    """Another user's client shaking as fast as the server answers (the busy tier's
    real load); sets `busy` once an answer says tier 1."""
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        while not stop.is_set():
            answer = client.post("/api/shake", json={})
            if answer.status_code == 200 and answer.json().get("tier") == 1:
                busy.set()


def test_web_shake__a_staggered_group_waits_for_its_start__then_shakes(
    browser: Browser, shake_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: Alice, in a staggered group after the first (5 groups, 60 s apart), on
    # the web client; a round that started early enough that her group starts 10 s
    # from now, its schedule known to the server
    daphne, _ = shake_stack
    alice_user = make_user(nickname="Alice")
    while (group := stagger_group(user_id=alice_user.pk, groups=5)) == 0:
        alice_user = make_user(nickname="Alice")
    alice = ChatPage.login(browser, daphne, alice_user)
    posts: list[Request] = []
    alice.page.on(
        "request",
        lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/api/shake") else None,
    )
    activity = activity_create(
        name="Gala",
        sponsors=[SponsorPlan("Beer", LOGO)],
        rounds=[
            RoundPlan(
                title="Round 1",
                planned_start=timezone.now() + timedelta(seconds=10 - 60 * group),
                duration_seconds=600,
                issue_rate=1000,
                stagger_seconds=60,
                prizes=(PrizePlan(sponsor=0, count=20, total=20 * 50),),
            )
        ],
    )
    activity_approve(activity_id=activity.pk)
    probe = login_session(alice_user)
    with httpx.Client(base_url=daphne.url, headers=probe.headers, timeout=30) as peek:
        known = eventually(
            lambda: (answer := peek.get("/api/shake/schedule").json())["round"] and answer,
            what="the round running on the server",
        )
    assert known["group"]["index"] == group
    # when: she opens the shake page and shakes at once (space bar)
    open_shake_page(alice)
    # then: the round is on, but the page counts down to her group's turn
    schedule = alice.by_id("shake-schedule")
    expect(schedule).to_have_attribute("data-state", "group")
    expect(schedule).to_contain_text("your group's turn in")
    alice.page.keyboard.press("Space")
    expect(alice.by_id("shake-status")).to_have_attribute("data-state", "group")
    assert posts == []
    # then: the shake goes once her group's start has come, and draws (not "not yet")
    answered = wait_idle(alice, 0)
    log = shake_log(alice)
    assert answered == 1
    assert log["answers"][0]["result"] in ("nothing", "packet")
    assert log["answers"][0]["sentAt"] >= log["groupOpensAt"]
    assert log["groupOpensAt"] == int(
        datetime.fromisoformat(known["group"]["starts_at"]).timestamp() * 1000
    )
    expect(schedule).to_have_attribute("data-state", "running")
    assert alice.errors == []


def test_web_shake__sponsor_logo_fetched_ahead__hash_checked__reported__shown_from_the_copy(
    browser: Browser, shake_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: a running round whose sponsor's logo is stored here (its logo_url elsewhere,
    # which the page's CSP would not show)
    daphne, _ = shake_stack
    round_ = sponsor_packet_round(logo="https://cdn.example.com/beer.png")
    out = io.BytesIO()
    Image.new("RGB", (56, 56), "#c00").save(out, format="PNG")
    sponsor = round_.activity.sponsors.get()
    digest = asset_store(sponsor_id=sponsor.pk, role="logo", content=out.getvalue()).sha256
    alice = ChatPage.login(browser, daphne, make_user(nickname="Alice"))
    fetched: list[str] = []
    alice.page.on("request", lambda r: fetched.append(r.url) if digest in r.url else None)
    # when: she opens the shake page (the round, and its manifest, loaded by the server)
    probe = login_session(make_user())
    with httpx.Client(base_url=daphne.url, headers=probe.headers, timeout=30) as peek:
        eventually(
            lambda: peek.get("/api/shake/schedule").json()["assets"],
            what="the manifest loaded by the access process",
        )
    open_shake_page(alice)
    # then: in idle time the page fetched the logo, checked its hash, kept it and told
    # the server it holds the whole manifest
    alice.page.wait_for_function(
        "() => window.__chat.shake().assets.reports.length > 0", timeout=30_000
    )
    assets = shake_log(alice)["assets"]
    assert assets["held"] == [digest]
    assert assets["failed"] == {}
    assert assets["reports"][0] == {"version": 1, "complete": True, "missing": []}
    assert [url.split(daphne.url)[1] for url in fetched] == [f"/api/shake/assets/{digest}"]
    # when: she shakes until she wins the sponsor's packet
    answered = 0
    while not alice.by_id("shake-prize").count():
        assert answered < 20, "no win"
        alice.by_id("shake-button").click()
        answered = wait_idle(alice, answered)
    # then: the card shows the logo from the kept copy, without fetching it again
    logo = alice.by_id("shake-prize").get_by_test_id("shake-sponsor-logo")
    expect(logo).to_have_attribute("src", re.compile(r"^blob:"))
    alice.page.wait_for_function(
        "() => document.querySelector('[data-testid=shake-sponsor-logo]').naturalWidth === 56"
    )
    assert len(fetched) == 1
    assert alice.errors == []


def test_web_shake__a_new_manifest_pushed_through_sync__fetched_ahead_off_the_shake_page(
    browser: Browser, shake_stack: tuple[ServerProcess, ServerProcess]
) -> None:
    # given: Alice online in her chats, never on the shake page
    daphne, _ = shake_stack
    round_ = sponsor_packet_round(logo="https://cdn.example.com/beer.png")
    alice = ChatPage.login(browser, daphne, make_user(nickname="Alice"))
    fetched: list[str] = []
    alice.page.on("request", lambda r: fetched.append(r.url) if "/api/shake/" in r.url else None)
    # when: a sponsor's logo is imported, and its version pushed to signed-in users
    out = io.BytesIO()
    Image.new("RGB", (56, 56), "#0c0").save(out, format="PNG")
    sponsor = round_.activity.sponsors.get()
    digest = asset_store(sponsor_id=sponsor.pk, role="logo", content=out.getvalue()).sha256
    assert assets_push_run(activity_id=round_.activity_id, version=1) >= 1
    # then: her client read the manifest from the sync entry, fetched and checked the
    # logo in idle time and reported it held, the shake page still closed
    alice.page.wait_for_function(
        "() => window.__chat.shake().assets.reports.length > 0", timeout=30_000
    )
    assets = shake_log(alice)["assets"]
    assert assets["held"] == [digest]
    assert assets["reports"][0] == {"version": 1, "complete": True, "missing": []}
    # (the manifest read again if the access process still had the old one)
    paths = [url.split(daphne.url)[1] for url in fetched]
    logo = f"/api/shake/assets/{digest}"
    assert set(paths) == {f"/api/shake/assets?activity={round_.activity_id}", logo, HELD}
    assert paths.count(logo) == 1
    assert paths.index(logo) < paths.index(HELD)
    expect(alice.by_id("shake-page")).to_be_hidden()
    assert alice.errors == []
