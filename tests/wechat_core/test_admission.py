"""The admission controller (DAGOR): lowest priorities refused first, the top class
never refused, the level steered by queuing time, users rotated hourly."""

from __future__ import annotations

import asyncio
import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from wechat_core.admission.controller import (
    FLOOR,
    TOP,
    AdmissionController,
    index_of,
    next_level,
)
from wechat_core.admission.http import LOGIN_POOL, SLOTS, UNBOUNDED, LoginPool, route_of_path
from wechat_core.admission.priorities import (
    USER_LEVELS,
    Business,
    frame_priority,
    route_priority,
    user_priority,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def overloaded_windows(
    controller: AdmissionController, clock: Clock, offered: list[tuple[int, int]], windows: int,
    *, waited: float,
) -> None:  # fmt: skip
    """`windows` windows in which `offered` arrive and admitted ones waited `waited`."""
    for _ in range(windows):
        for business, user in offered:
            if controller.admit(business, user).admitted:
                controller.queued(waited)
        clock.now += controller.window_seconds
        controller.maybe_adjust()  # the window ends (the probes call this in a server)


def mix() -> list[tuple[int, int]]:
    return [(business, user) for business in range(6) for user in range(0, USER_LEVELS, 4)]


def test_controller__calm__admits_everything_at_tier_0() -> None:
    clock = Clock()
    controller = AdmissionController(clock=clock)
    overloaded_windows(controller, clock, mix(), 5, waited=0.001)
    assert controller.level == TOP
    assert controller.tier() == 0
    assert all(controller.admit(b, u).admitted for b, u in mix())


def test_controller__overloaded__refuses_the_lowest_business_first_and_never_login() -> None:
    # given: a controller that sees 100 ms of queuing for a while
    clock = Clock()
    controller = AdmissionController(clock=clock)
    overloaded_windows(controller, clock, mix(), 3, waited=0.1)
    # then: "everything else" is refused before anything more important
    assert controller.level < TOP
    assert not controller.admit(Business.OTHER, USER_LEVELS - 1).admitted
    assert controller.admit(Business.LOGIN, USER_LEVELS - 1).admitted
    # and when it goes on, shedding reaches down to the top class but never into it
    overloaded_windows(controller, clock, mix(), 60, waited=0.1)
    assert controller.level == FLOOR
    assert all(controller.admit(Business.LOGIN, user).admitted for user in range(USER_LEVELS))
    assert not any(controller.admit(Business.SEND, user).admitted for user in range(USER_LEVELS))
    refusal = controller.admit(Business.SYNC, 0)
    assert (refusal.admitted, refusal.tier) == (False, 2)
    assert refusal.retry_after >= 1


def test_controller__operators__always_admitted() -> None:
    clock = Clock()
    controller = AdmissionController(clock=clock)
    overloaded_windows(controller, clock, mix(), 60, waited=1.0)
    assert controller.admit(Business.OPERATOR, USER_LEVELS - 1).admitted


def test_controller__overload_ends__level_recovers_to_admit_everything() -> None:
    clock = Clock()
    controller = AdmissionController(clock=clock)
    overloaded_windows(controller, clock, mix(), 20, waited=0.1)
    assert controller.level < TOP
    overloaded_windows(controller, clock, mix(), 400, waited=0.001)
    assert controller.level == TOP
    assert controller.tier() == 0


def test_controller__shed_step__sized_to_the_overload() -> None:
    # A deep overload (10x the threshold) sheds more in one window than a slight one.
    slight, deep = Clock(), Clock()
    a = AdmissionController(clock=slight)
    b = AdmissionController(clock=deep)
    overloaded_windows(a, slight, mix(), 1, waited=0.021)
    overloaded_windows(b, deep, mix(), 1, waited=0.2)
    assert b.level < a.level < TOP


@settings(max_examples=200, deadline=None)
@given(
    level=st.integers(min_value=FLOOR, max_value=TOP),
    histogram=st.lists(st.integers(min_value=0, max_value=50), min_size=TOP + 1, max_size=TOP + 1),
    overloaded=st.booleans(),
    shed=st.floats(min_value=0.01, max_value=0.9),
)
def test_next_level__moves_the_right_way_and_stays_within_bounds(
    level: int, histogram: list[int], overloaded: bool, shed: float
) -> None:
    new = next_level(level, histogram, overloaded=overloaded, shed=shed, recover=0.02)
    assert FLOOR <= new <= TOP
    if overloaded:
        assert new <= level  # overload never admits more
    else:
        assert new >= level  # calm never admits less


@settings(max_examples=200, deadline=None)
@given(
    waits=st.lists(st.floats(min_value=0, max_value=1.0), min_size=1, max_size=30),
    requests=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, USER_LEVELS - 1)), min_size=1, max_size=60
    ),
)
def test_controller__at_any_moment__a_refused_priority_implies_every_lower_one_refused(
    waits: list[float], requests: list[tuple[int, int]]
) -> None:
    # whatever the history of queuing times, the decision is a threshold: never the
    # top class refused while a lower one is admitted, never a higher refused
    # while a lower one is admitted
    clock = Clock()
    controller = AdmissionController(clock=clock)
    for wait in waits:
        overloaded_windows(controller, clock, requests, 1, waited=wait)
        decisions = {
            index_of(b, u): controller.admit(b, u).admitted
            for b in range(6)
            for u in (0, USER_LEVELS // 2, USER_LEVELS - 1)
        }
        admitted = [index for index, ok in decisions.items() if ok]
        refused = [index for index, ok in decisions.items() if not ok]
        assert all(index_of(Business.LOGIN, u) in admitted for u in (0, USER_LEVELS - 1))
        if admitted and refused:
            assert max(admitted) < min(refused)


def test_priorities__documented_order() -> None:
    assert (
        route_priority("login", "")
        < route_priority("messaging-send", "")
        < route_priority("messaging-sync", "")
        < route_priority("official-search", "")
        < route_priority("shake", "")
        < route_priority("wallet", "")
    )
    assert route_priority("index", "admin") == Business.OPERATOR
    assert route_priority("metrics", "") == Business.OPERATOR
    assert frame_priority("send") < frame_priority("sync") < frame_priority("nonsense")


def test_user_priority__stable_within_an_hour_and_rotated_across_hours() -> None:
    hour = 3600 * 500_000
    same = [user_priority(user, now=hour + 10) for user in range(200)]
    assert same == [user_priority(user, now=hour + 3500) for user in range(200)]
    later = [user_priority(user, now=hour + 3600) for user in range(200)]
    assert same != later
    assert all(0 <= rank < USER_LEVELS for rank in same + later)


def test_routes__password_checks_run_in_the_login_pool__operators_unbounded() -> None:
    assert route_of_path("/api/accounts/login") == (Business.LOGIN, LOGIN_POOL)
    assert route_of_path("/api/accounts/register") == (Business.LOGIN, LOGIN_POOL)
    assert route_of_path("/api/messaging/send") == (Business.SEND, SLOTS)
    assert route_of_path("/metrics") == (Business.OPERATOR, UNBOUNDED)


def test_login_pool__refuses_a_login_that_would_wait_past_the_budget() -> None:
    # given: one worker, logins that take 0.3 s each, a wait budget of 0.5 s
    pool = LoginPool(1, 0.5)
    pool.average = 0.3
    release = asyncio.Event()
    started: list[int] = []

    async def login(n: int) -> None:
        started.append(n)
        await release.wait()

    async def run() -> list[bool]:
        full = []
        tasks = []
        for n in range(3):
            # when: logins arrive one after the other while the first still runs
            full.append(pool.full())
            if not full[-1]:
                tasks.append(asyncio.create_task(pool.run(functools.partial(login, n))))
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks)
        return full

    full = asyncio.run(run())
    # then: the first runs, the second waits (0.3 s ahead of it), the third is refused
    assert full == [False, False, True]
    assert started == [0, 1]
    # and: after them the pool is empty, its average moved towards what they took
    assert (pool.running, pool.waiting) == (0, 0)
    assert not pool.full()
    assert pool.average < 0.3
