"""Coupons delivered to their businesses (seed 003's slow payout; docs/shake.md
"Coupons"), against real local HTTP businesses (tests/support/businesses.py): each
attempt run here as its task would run it; the worker, the queue and the rate across
workers are in test_payout_live.py.

Shown: a coupon is delivered once with a signed request and its idempotency key; a
winner without an account is deferred, sees "arrives within 24 h", and gets it after
opening one and retrying; a business that times out slows its pace, which recovers;
the pace spreads a second's requests and never grants more than the rate; a failing
business is shielded by the breaker; reconciliation alerts while it fails and
delivers once it recovers."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.exceptions import TicketRefused
from monitoring.models import Alert, AlertRule
from shake import pacing
from shake.exceptions import PlanInvalid
from shake.models import CouponDelivery, DeliveryState, Prize
from shake.services.activities import PrizePlan, RoundPlan, activity_create
from shake.services.delivery import coupon_deliver, coupon_delivery_retry
from shake.services.reconcile import shake_reconcile
from tests.factories import Session, login_session, make_user
from tests.shake.conftest import SPONSORS, business_of, coupon_round, coupons_open
from tests.support.businesses import BusinessServer
from wallet.models import LedgerAccount
from wechat_core.breakers import ejected, instance_of

pytestmark = pytest.mark.django_db


def delivery_of(prize_id: int) -> CouponDelivery:
    return CouponDelivery.objects.get(prize_id=prize_id)


def api(session: Session) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Ticket {session.token}")
    return client


def test_coupon__opened__signed_request_with_its_key_delivered_once(
    servers: list[BusinessServer],
) -> None:
    # given: a coupon of a business, opened by its winner
    business, server = business_of(servers)
    round_ = coupon_round(business=business, count=1)
    session = login_session(make_user())
    [prize_id] = coupons_open(round_, [session])
    assert delivery_of(prize_id).state == DeliveryState.PENDING
    # when: its task runs, then is redelivered twice
    first = coupon_deliver(delivery_id=delivery_of(prize_id).pk)
    again = [coupon_deliver(delivery_id=delivery_of(prize_id).pk) for _ in range(2)]
    # then: one signed request (the server checks the signature and the key), granted once
    assert (first.state, first.retry_in) == (DeliveryState.DELIVERED, None)
    assert [a.state for a in again] == [DeliveryState.DELIVERED] * 2
    assert [(a.key, a.answer) for a in server.log()] == [(f"shake-coupon-{prize_id}", "ok")]
    delivery = delivery_of(prize_id)
    assert (delivery.attempts, delivery.reference) == (1, f"ref-shake-coupon-{prize_id}")
    # and: a coupon is no money: nothing reached the winner's wallet
    assert not LedgerAccount.objects.filter(user=session.user).exists()


def test_coupon__winner_without_an_account__deferred_then_delivered_after_opening_one(
    servers: list[BusinessServer],
) -> None:
    # given: a business where the winner has no account
    business, server = business_of(servers, accounts=set())
    round_ = coupon_round(business=business, count=1)
    session = login_session(make_user())
    [prize_id] = coupons_open(round_, [session])
    # when: it is delivered
    attempt = coupon_deliver(delivery_id=delivery_of(prize_id).pk)
    # then: deferred, not lost; the winner sees it arrives within 24 h and may retry
    assert (attempt.state, attempt.retry_in) == (DeliveryState.DEFERRED, None)
    view = api(session).get(f"/api/shake/coupons/{prize_id}")
    assert view.status_code == 200, view.content
    assert view.json() | {"delivered_at": None} == {
        "packet": prize_id,
        "business": business.name,
        "coupon": "ride-10",
        "amount": 500,
        "state": "deferred",
        "arrives_within_hours": 24,
        "can_retry": True,
        "attempts": 1,
        "delivered_at": None,
    }
    # when: they open an account and retry (twice: the second changes nothing)
    server.open_account(session.user.pk)
    retried = api(session).post(f"/api/shake/coupons/{prize_id}/retry")
    assert retried.status_code == 200, retried.content
    assert retried.json()["state"] == "pending"
    assert api(session).post(f"/api/shake/coupons/{prize_id}/retry").json()["state"] == "pending"
    coupon_deliver(delivery_id=delivery_of(prize_id).pk)  # the task the retry enqueued
    # then: delivered once; retrying a delivered coupon changes nothing either
    done = api(session).post(f"/api/shake/coupons/{prize_id}/retry").json()
    assert (done["state"], done["arrives_within_hours"], done["can_retry"]) == (
        "delivered",
        None,
        False,
    )
    assert [a.answer for a in server.log()] == ["no_account", "ok"]


def test_coupon__someone_elses__not_found_and_not_retried(servers: list[BusinessServer]) -> None:
    business, _ = business_of(servers)
    round_ = coupon_round(business=business, count=1)
    [prize_id] = coupons_open(round_, [login_session(make_user())])
    other = login_session(make_user())
    assert api(other).get(f"/api/shake/coupons/{prize_id}").json()["code"] == (
        "shake_prize_unknown"
    )
    answer = api(other).post(f"/api/shake/coupons/{prize_id}/retry")
    assert (answer.status_code, answer.json()["code"]) == (404, "shake_prize_unknown")
    with pytest.raises(TicketRefused):
        coupon_delivery_retry(ticket=other.ticket, user_id=other.user.pk + 1, prize_id=prize_id)


def test_business__times_out__attempt_failed_retried_later_and_its_pace_slowed(
    servers: list[BusinessServer],
) -> None:
    # given: a business answering after 1 s, called with a 0.2 s timeout
    business, _ = business_of(servers, timeout=0.2, delay=1.0)
    round_ = coupon_round(business=business, count=1)
    [prize_id] = coupons_open(round_, [login_session(make_user())])
    # when
    attempt = coupon_deliver(delivery_id=delivery_of(prize_id).pk)
    # then: failed, to be retried by the task; the pace halved (and recovering)
    assert attempt.state == DeliveryState.FAILED
    assert attempt.retry_in is not None
    assert delivery_of(prize_id).last_outcome == "timeout"
    assert 0.5 <= pacing.pace_factor(business_id=business.pk) < 0.7


def test_pace__slowed_twice_in_a_second__halved_once_then_recovers() -> None:
    assert pacing.pace_factor(business_id=990) == 1.0
    assert pacing.pace_slow(business_id=990) == 0.5
    assert pacing.pace_slow(business_id=990) == 0.5  # one burst of refusals, one signal
    deadline = time.monotonic() + 30
    while pacing.pace_factor(business_id=990) < 0.6:  # 0.1 of the rate a second
        assert time.monotonic() < deadline, "the pace never recovered"
        time.sleep(0.05)


def test_pace__taken_flat_out__never_more_than_the_rate_in_a_second_spread_over_ticks() -> None:
    # given: a rate of 5 a second; when: one taker asks as fast as it can for 2.5 s,
    # each grant known to lie between the moment it was asked and the answer
    grants: list[tuple[float, float]] = []
    ends = time.time() + 2.5
    while time.time() < ends:
        asked = time.time()
        if pacing.token_wait(business_id=991, rate=5, within=0.5):
            grants.append((asked, time.time()))
    # then: at most 5 in any wall-clock second, and at least two whole seconds' worth
    per_second = Counter(int(answered) for _, answered in grants)
    assert max(per_second.values()) <= 5, per_second
    assert len(grants) >= 8, per_second
    # and: spread over the second (ticks 1, 3, 5, 7 and 8 of 10 hold one each), so any
    # four grants in a row span at least 0.4 s; bunched in one tick they would span
    # less than 0.1 s. Measured from the first's asking to the last's answer, so that
    # a slow machine can only lengthen the span, never shorten it.
    spans = [last[1] - first[0] for first, *_, last in _windows(grants, 4)]
    assert min(spans) > 0.3, spans


def _windows(items: list[tuple[float, float]], size: int) -> list[list[tuple[float, float]]]:
    return [items[i : i + size] for i in range(len(items) - size + 1)]


def test_business__failing__shielded_by_the_breaker_after_consecutive_failures(
    servers: list[BusinessServer], settings: Any
) -> None:
    # given: a failing business, ejected after 2 consecutive failures
    settings.BREAKER_FAILURES = 2
    business, server = business_of(servers, failing=True)
    round_ = coupon_round(business=business, count=4)
    prizes = coupons_open(round_, [login_session(make_user())])
    # when
    attempts = [coupon_deliver(delivery_id=delivery_of(p).pk) for p in prizes]
    # then: all failed; the last two were refused without reaching it
    assert {a.state for a in attempts} == {DeliveryState.FAILED}
    assert len(server.log()) == 2
    assert [delivery_of(p).last_detail.startswith("ejected") for p in prizes] == [
        False,
        False,
        True,
        True,
    ]


def test_reconcile__business_still_failing__alerts__recovered__delivers_and_clears(
    servers: list[BusinessServer], settings: Any
) -> None:
    # given: coupons whose deliveries failed (attempts as their tasks ran them)
    settings.BREAKER_RESET_SECONDS = 0.5
    business, server = business_of(servers, failing=True)
    round_ = coupon_round(business=business, count=3)
    prizes = coupons_open(round_, [login_session(make_user()), login_session(make_user())])
    for prize_id in prizes:
        coupon_deliver(delivery_id=delivery_of(prize_id).pk)
    # when: the next-day reconciliation runs while the business still fails
    run = shake_reconcile()
    # then: each redone once, still failing: unresolved, operators alerted
    assert run.deliveries_redone == 3
    assert sorted(p["prize"] for p in run.problems) == sorted(prizes)
    assert {p["problem"] for p in run.problems} == {"delivery_failed"}
    rule = AlertRule.objects.get(name="Shake reconciliation")
    assert Alert.objects.filter(rule=rule, state="firing").exists()
    # when: the business recovers (and its breaker's cool-down is over) and it runs again
    server.set_failing(False)
    deadline = time.monotonic() + 30
    while ejected("shake.business", instance_of(server.url)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run = shake_reconcile()
    # then: all delivered, once each; nothing unresolved; the alert is over
    assert (run.unresolved, run.deliveries_redone) == (0, 3)
    assert {delivery_of(p).state for p in prizes} == {DeliveryState.DELIVERED}
    assert sorted(server.granted.values()) == [1, 1, 1]
    assert not Alert.objects.filter(rule=rule, state="firing").exists()


def test_approve__coupons__not_funded_from_the_budget_and_reconcile_clean(
    servers: list[BusinessServer],
) -> None:
    business, _ = business_of(servers)
    round_ = coupon_round(business=business, count=3, face_value=700)
    round_.activity.refresh_from_db()
    assert round_.activity.budget_fen == 0
    assert Prize.objects.filter(round=round_, kind="coupon", business=business).count() == 3
    assert shake_reconcile().unresolved == 0


def test_plan__coupon_without_a_business__refused() -> None:
    plan = PrizePlan(sponsor=0, count=1, total=100, kind="coupon", coupon="ride-10")
    with pytest.raises(PlanInvalid):
        activity_create(
            name="Bad",
            sponsors=SPONSORS,
            rounds=[
                RoundPlan(
                    title="r",
                    planned_start=timezone.now(),
                    duration_seconds=60,
                    issue_rate=10,
                    prizes=(plan,),
                )
            ],
        )
