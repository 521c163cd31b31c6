"""Each caller shields a failing instance by itself (seed 000): a breaker per
(service, host:port) in the process's memory ejects an instance after
BREAKER_FAILURES consecutive failures, refuses calls to it without making them,
then lets a probe through after BREAKER_RESET_SECONDS."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wechat_core import breakers


class Boom(Exception):
    pass


def failing() -> int:
    raise Boom()


def test_instance_of__default_ports_spelled_out() -> None:
    assert breakers.instance_of("https://Pay.example.com/x") == "pay.example.com:443"
    assert breakers.instance_of("http://127.0.0.1:8090/pay") == "127.0.0.1:8090"
    assert breakers.instance_of("ws://campus-b.example.com/ws") == "campus-b.example.com:80"


@given(outcomes=st.lists(st.booleans(), max_size=40), fail_max=st.integers(1, 6))
def test_shielded__ejects_exactly_after_fail_max_consecutive_failures(
    outcomes: list[bool], fail_max: int
) -> None:
    from django.conf import settings

    breakers.forget_all()
    previous = settings.BREAKER_FAILURES, settings.BREAKER_RESET_SECONDS
    settings.BREAKER_FAILURES, settings.BREAKER_RESET_SECONDS = fail_max, 3600.0
    try:
        reached = 0
        streak = 0
        for ok in outcomes:

            def call(ok: bool = ok) -> int:
                nonlocal reached
                reached += 1
                if not ok:
                    raise Boom()
                return 1

            expected_ejected = streak >= fail_max
            if expected_ejected:
                with pytest.raises(breakers.Ejected):
                    breakers.shielded("t", "h:1", call)
                continue
            if ok:
                assert breakers.shielded("t", "h:1", call) == 1
                streak = 0
            else:
                with pytest.raises(Boom):
                    breakers.shielded("t", "h:1", call)
                streak += 1
        # every call reached the instance until it was ejected, none after
        assert reached == sum(1 for _ in outcomes) - max(0, _refused(outcomes, fail_max))
    finally:
        settings.BREAKER_FAILURES, settings.BREAKER_RESET_SECONDS = previous
        breakers.forget_all()


def _refused(outcomes: list[bool], fail_max: int) -> int:
    streak = 0
    for n, ok in enumerate(outcomes):
        if streak >= fail_max:
            return len(outcomes) - n
        streak = 0 if ok else streak + 1
    return 0


def test_shielded__failed_answer_counts__instances_apart(settings: Any) -> None:
    settings.BREAKER_FAILURES, settings.BREAKER_RESET_SECONDS = 2, 3600.0
    for _ in range(2):
        assert breakers.shielded("t", "a:1", lambda: 503, failed=lambda s: s >= 500) == 503
    with pytest.raises(breakers.Ejected) as ejected:
        breakers.shielded("t", "a:1", lambda: 200)
    assert ejected.value.retry_in > 3000
    # another instance of the same service, and the same instance for another caller: untouched
    assert breakers.shielded("t", "b:1", lambda: 200) == 200
    assert breakers.shielded("other", "a:1", lambda: 200) == 200
    assert breakers.state("t", "a:1") == "open"


def test_shielded__after_the_cool_down__one_probe__success_closes_failure_reopens(
    settings: Any,
) -> None:
    settings.BREAKER_FAILURES, settings.BREAKER_RESET_SECONDS = 1, 0.2
    with pytest.raises(Boom):
        breakers.shielded("t", "p:1", failing)
    assert breakers.ejected("t", "p:1")
    deadline = time.monotonic() + 30
    while breakers.ejected("t", "p:1"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # a failed probe ejects it again at once
    with pytest.raises(Boom):
        breakers.shielded("t", "p:1", failing)
    assert breakers.ejected("t", "p:1")
    while breakers.ejected("t", "p:1"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # a successful probe brings it back
    assert breakers.shielded("t", "p:1", lambda: 7) == 7
    assert breakers.state("t", "p:1") == "closed"


def test_shielded__calls_to_one_instance_run_side_by_side() -> None:
    # given: a slow instance, and eight callers in eight threads
    breakers.forget_all()
    in_flight, most = 0, 0
    counting = threading.Lock()
    all_in = threading.Barrier(8, timeout=30)

    def slow_call() -> int:
        nonlocal in_flight, most
        with counting:
            in_flight += 1
            most = max(most, in_flight)
        all_in.wait()  # returns only once all eight are inside the call together
        with counting:
            in_flight -= 1
        return 1

    # when: they call it at once through its breaker
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: breakers.shielded("t", "slow:1", slow_call), range(8)))
    # then: all eight were in the call at the same time (a breaker holding a lock
    # for the whole call would let one in, and the barrier would time out)
    assert results == [1] * 8
    assert most == 8
    breakers.forget_all()
