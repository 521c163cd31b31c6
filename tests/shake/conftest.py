"""Fixtures of the shake tests: approved activities whose round issues now."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from devtools.processes import ServerProcess, start_asgi_server
from shake.models import Business, Round
from shake.services.activities import (
    PrizePlan,
    RoundPlan,
    SponsorPlan,
    activity_approve,
    activity_create,
    business_create,
)
from shake.services.opening import Win, prize_open
from shake.services.reserving import prizes_reserve
from shake.signing import win_sign
from tests.factories import Session
from tests.support.businesses import BusinessServer

SPONSORS = [
    SponsorPlan("Red Star Beer", "https://example.com/beer.png", "#c00"),
    SponsorPlan("Moon Phones", "https://example.com/moon.png"),
    SponsorPlan("Dragon Air", "https://example.com/air.png"),
]


def approved_round(
    *,
    rate: int = 1000,
    prizes_each: int = 50,
    duration: int = 600,
    starts_in: float = -1.0,
    per_user_cap: int = 3,
    per_sponsor_cap: int = 1,
    slices: int | None = None,
    stagger: int = 0,
) -> Round:
    """An approved activity with one round issuing from `starts_in` seconds from now:
    `prizes_each` cash packets from each of three sponsors (and sponsor packets with
    extra shares from the first), its groups `stagger` seconds apart."""
    starts = timezone.now() + timedelta(seconds=starts_in)
    activity = activity_create(
        name="Spring Festival Gala",
        sponsors=SPONSORS,
        rounds=[
            RoundPlan(
                title="Round 1",
                planned_start=starts,
                duration_seconds=duration,
                issue_rate=rate,
                per_user_cap=per_user_cap,
                per_sponsor_cap=per_sponsor_cap,
                slices=slices,
                stagger_seconds=stagger,
                prizes=(
                    PrizePlan(sponsor=0, count=prizes_each, total=prizes_each * 88),
                    PrizePlan(sponsor=1, count=prizes_each, total=prizes_each * 100),
                    PrizePlan(sponsor=2, count=prizes_each, total=prizes_each * 66),
                    PrizePlan(
                        sponsor=0,
                        count=2,
                        total=1000,
                        kind="sponsor",
                        extra_shares=5,
                        extra_total=500,
                    ),
                ),
            )
        ],
    )
    activity_approve(activity_id=activity.pk)
    return activity.rounds.get()


def sponsor_round(*, count: int = 4, slices: int = 1) -> Round:
    """An approved activity with one round issuing now of sponsor packets only, each
    worth 100 fen with 3 extra shares worth 300 fen together (seed 004's 分裂红包)."""
    activity = activity_create(
        name="Gala",
        sponsors=SPONSORS,
        rounds=[
            RoundPlan(
                title="Sponsor round",
                planned_start=timezone.now() - timedelta(seconds=1),
                duration_seconds=600,
                issue_rate=1000,
                slices=slices,
                prizes=(
                    PrizePlan(
                        sponsor=0,
                        count=count,
                        total=100 * count,
                        kind="sponsor",
                        extra_shares=3,
                        extra_total=300,
                    ),
                ),
            )
        ],
    )
    activity_approve(activity_id=activity.pk)
    return activity.rounds.get()


def start_shake_server(live_env: dict[str, str], log_dir: Path, name: str) -> ServerProcess:
    """A server running the shake engine, in a registry of its own (the suite's shared
    servers run without it: they would take slices of these tests' rounds)."""
    env = live_env | {
        "SHAKE_ENGINE_THREAD": "true",
        "SHAKE_REGISTRY": f"shake-{name}-{uuid.uuid4().hex[:8]}",
    }
    return start_asgi_server(log_dir=log_dir, env=env, name=name)


def coupon_round(*, business: Business, count: int, face_value: int = 500) -> Round:
    """An approved activity with one round issuing now of `count` coupons of
    `business`, each worth `face_value` fen (the business's to give)."""
    activity = activity_create(
        name="Gala coupons",
        sponsors=SPONSORS,
        rounds=[
            RoundPlan(
                title="Coupon round",
                planned_start=timezone.now() - timedelta(seconds=1),
                duration_seconds=600,
                issue_rate=1000,
                slices=1,
                prizes=(
                    PrizePlan(
                        sponsor=1,
                        count=count,
                        total=face_value * count,
                        kind="coupon",
                        business=business.pk,
                        coupon="ride-10",
                    ),
                ),
            )
        ],
    )
    activity_approve(activity_id=activity.pk)
    return activity.rounds.get()


def coupons_open(round_: Round, sessions: list[Session]) -> list[int]:
    """Each session wins and opens coupons of the round in turn, as the access process
    would hand them out (reserved, then opened with a signed win). The prize ids."""
    held = prizes_reserve(round_id=round_.pk, slice_=0, owner="test-access", count=10_000)
    opened = []
    for index, prize in enumerate(held):
        session = sessions[index % len(sessions)]
        signature = win_sign(
            prize_id=prize.prize_id,
            round_id=prize.round_id,
            user_id=session.user.pk,
            amount=prize.amount,
            sponsor_id=prize.sponsor_id,
        )
        win = Win(prize.prize_id, prize.round_id, prize.amount, prize.sponsor_id, signature)
        prize_open(ticket=session.ticket, user_id=session.user.pk, win=win)
        opened.append(prize.prize_id)
    return opened


BUSINESS_SECRET = "business-secret-5f1c"


@pytest.fixture
def servers() -> Iterator[list[BusinessServer]]:
    """The business servers a test starts (stopped after it)."""
    started: list[BusinessServer] = []
    yield started
    for server in started:
        server.stop()


def business_of(
    servers: list[BusinessServer], *, rate: int = 100, timeout: float = 2.0, **behaviour: Any
) -> tuple[Business, BusinessServer]:
    """A business configured at `rate` a second, played by a real local HTTP server
    behaving as `behaviour` says (tests/support/businesses.py)."""
    server = BusinessServer(secret=BUSINESS_SECRET, **behaviour).start()
    servers.append(server)
    business = business_create(
        name=f"Business {len(servers)}",
        endpoint=server.url,
        secret=BUSINESS_SECRET,
        rate_per_second=rate,
        timeout_seconds=timeout,
    )
    return business, server
