"""Coupons delivered by a real Celery worker on `payout_slow` to real local HTTP
businesses (tests/support/businesses.py; docs/shake.md "Coupons"): the rate held
across the worker's threads by the shared pace, measured from the business's own log
of arrivals; each coupon delivered exactly once however often its task is redelivered
or its winner retries; a winner without an account deferred, then served after
opening one and retrying through the API."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.db import transaction
from rest_framework.test import APIClient

from devtools.processes import ServerProcess, start_celery_worker, start_redis
from shake import pacing
from shake.models import CouponDelivery, DeliveryState
from tests.factories import Session, login_session, make_user
from tests.shake.conftest import business_of, coupon_round, coupons_open
from tests.support.businesses import BusinessServer
from tests.support.waiting import eventually
from wechat_core.celery import app as suite_app
from wechat_core.transactions import task_enqueue

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
PAYOUT_ENV = {
    "SHAKE_PAYOUT_RETRY_SECONDS": "0.2",
    "SHAKE_PAYOUT_MAX_ATTEMPTS": "3",
}


@pytest.fixture(scope="module")
def payout_worker(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    """A worker of `payout_slow` (8 threads: the pace, not the pool, sets the rate) on a
    private broker, which this process's enqueues reach too."""
    broker = start_redis(log_dir=live_log_dir)
    url = f"{broker.url}/0"
    # Celery reads CELERY_BROKER_URL from the environment before any app's setting.
    saved = {name: os.environ.get(name) for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    os.environ["CELERY_BROKER_URL"] = os.environ["CELERY_RESULT_BACKEND"] = url
    env = live_env | PAYOUT_ENV | {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url}
    worker = start_celery_worker(
        log_dir=live_log_dir, env=env, queues="payout_slow", name="payout-slow", concurrency=8
    )
    client = Celery("payout-test", broker=url, backend=url, set_as_current=True)
    client.config_from_object("django.conf:settings", namespace="CELERY")  # routes
    yield worker
    client.close()
    worker.stop()
    broker.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    suite_app.set_current()


def sessions(count: int) -> list[Session]:
    return [login_session(make_user()) for _ in range(count)]


def states(prizes: list[int]) -> dict[str, int]:
    found: dict[str, int] = {}
    for state in CouponDelivery.objects.filter(prize_id__in=prizes).values_list("state", flat=True):
        found[state] = found.get(state, 0) + 1
    return found


def api(session: Session) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Ticket {session.token}")
    return client


def test_slow_business__says_too_fast__slowed_and_caught_up_never_above_its_rate(
    payout_worker: ServerProcess, servers: list[BusinessServer]
) -> None:
    # given: a business configured at 8 a second that can take only 3 (429 past them)
    business, server = business_of(servers, rate=8, capacity_per_second=3)
    round_ = coupon_round(business=business, count=40)
    # when: 40 coupons are opened at once (one commit: their 40 tasks queue together, so
    # the demand is past the business's rate from the first second)
    winners = sessions(4)
    with transaction.atomic():
        prizes = coupons_open(round_, winners)
    lowest = [1.0]

    def all_delivered() -> bool:
        lowest[0] = min(lowest[0], pacing.pace_factor(business_id=business.pk))
        return states(prizes) == {DeliveryState.DELIVERED: 40}

    eventually(all_delivered, timeout=180, what=f"all delivered: {states(prizes)}")
    # then: the business's own log: never more than 8 arrivals in a second
    per_second = server.per_second()
    print("slow business, arrivals per second:", list(per_second.values()))
    print("answers:", Counter(a.answer for a in server.log()), "lowest pace:", lowest[0])
    assert max(per_second.values()) <= 8, per_second
    # and: it said too fast, and the pace came down from its rate
    answers = Counter(a.answer for a in server.log())
    assert answers["too_fast"] >= 1, answers
    assert lowest[0] < 1.0
    # and: caught up, each coupon granted exactly once
    assert sorted(server.granted) == sorted(f"shake-coupon-{p}" for p in prizes)
    assert set(server.granted.values()) == {1}


def test_fast_business__tasks_redelivered_and_winners_retrying__each_coupon_sent_once(
    payout_worker: ServerProcess, servers: list[BusinessServer]
) -> None:
    # given: 30 coupons of a fast business, opened (each enqueues its delivery)
    business, server = business_of(servers, rate=50)
    round_ = coupon_round(business=business, count=30)
    winners = sessions(3)
    prizes = coupons_open(round_, winners)
    # when: every delivery task is redelivered twice and every winner asks to retry
    deliveries = list(
        CouponDelivery.objects.filter(prize_id__in=prizes).values_list("id", flat=True)
    )
    for delivery_id in deliveries * 2:
        task_enqueue("shake.tasks.deliver_coupon", delivery_id)
    for index, prize_id in enumerate(prizes):
        answer = api(winners[index % 3]).post(f"/api/shake/coupons/{prize_id}/retry")
        assert answer.status_code == 200, answer.content
    eventually(
        lambda: states(prizes) == {DeliveryState.DELIVERED: 30},
        what=f"all delivered: {states(prizes)}",
    )
    # then: the business received one request per coupon, and granted each once
    keys = [a.key for a in server.log()]
    assert sorted(keys) == sorted(f"shake-coupon-{p}" for p in prizes)
    assert {a.answer for a in server.log()} == {"ok"}
    assert set(
        CouponDelivery.objects.filter(pk__in=deliveries).values_list("attempts", flat=True)
    ) == {1}


def test_winner_without_an_account__deferred__opens_one_retries__delivered(
    payout_worker: ServerProcess, servers: list[BusinessServer]
) -> None:
    # given: a business where the winner has no account
    business, server = business_of(servers, rate=20, accounts=set())
    round_ = coupon_round(business=business, count=1)
    [winner] = sessions(1)
    [prize_id] = coupons_open(round_, [winner])
    # when: the worker delivers it
    eventually(lambda: states([prize_id]) == {DeliveryState.DEFERRED: 1}, what="deferred")
    # then: the winner reads "arrives within 24 h" and may retry
    view = api(winner).get(f"/api/shake/coupons/{prize_id}").json()
    assert (view["state"], view["arrives_within_hours"], view["can_retry"]) == (
        "deferred",
        24,
        True,
    )
    # when: they open an account at the business and retry, three times over
    server.open_account(winner.user.pk)
    for _ in range(3):
        assert api(winner).post(f"/api/shake/coupons/{prize_id}/retry").status_code == 200
    eventually(lambda: states([prize_id]) == {DeliveryState.DELIVERED: 1}, what="delivered")
    # then: delivered once; the winner sees it there
    view = api(winner).get(f"/api/shake/coupons/{prize_id}").json()
    assert (view["state"], view["arrives_within_hours"]) == ("delivered", None)
    answers = [a.answer for a in server.log()]
    assert answers.count("ok") == 1, answers
    assert "duplicate" not in answers, answers
    assert answers[0] == "no_account"
