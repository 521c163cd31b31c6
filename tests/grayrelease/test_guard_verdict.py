"""The rollout guard's verdict (grayrelease.guard): a minimum sample per variant
before any verdict, and a trip only beyond the margin."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from grayrelease.guard import VariantSample, guard_judge
from grayrelease.types import GuardSpec, GuardState


@st.composite
def samples(draw: st.DrawFn, *, most: int = 5000) -> VariantSample:
    requests = draw(st.integers(min_value=0, max_value=most))
    return VariantSample(requests=requests, errors=draw(st.integers(0, requests)))


guards = st.builds(
    GuardSpec,
    margin_bp=st.integers(min_value=1, max_value=10_000),
    min_sample=st.integers(min_value=10, max_value=2000),
    window_seconds=st.just(60),
)


def excess(treated: VariantSample, control: VariantSample) -> Fraction:
    """Exactly how far the treated error rate is above the control's."""
    return Fraction(treated.errors, treated.requests) - Fraction(control.errors, control.requests)


@given(guard=guards, treated=samples(), control=samples())
def test_guard_judge__any_samples__insufficient_exactly_when_a_variant_is_below_the_minimum(
    guard: GuardSpec, treated: VariantSample, control: VariantSample
) -> None:
    # when
    verdict = guard_judge(guard=guard, treated=treated, control=control)
    # then
    too_few = treated.requests < guard.min_sample or control.requests < guard.min_sample
    assert (verdict.state == GuardState.INSUFFICIENT) == too_few


@given(guard=guards, treated=samples(), control=samples())
def test_guard_judge__enough_samples__trips_exactly_when_the_excess_is_beyond_the_margin(
    guard: GuardSpec, treated: VariantSample, control: VariantSample
) -> None:
    # given: enough outcomes on both sides
    if treated.requests < guard.min_sample or control.requests < guard.min_sample:
        return
    # when
    verdict = guard_judge(guard=guard, treated=treated, control=control)
    # then: compared with exact arithmetic, never by rounding
    beyond = excess(treated, control) > Fraction(guard.margin_bp, 10_000)
    assert verdict.state == (GuardState.TRIPPED if beyond else GuardState.HEALTHY)


@given(guard=guards, treated=samples(), control=samples(), more=st.integers(1, 500))
def test_guard_judge__more_treated_errors__never_turns_a_trip_into_healthy(
    guard: GuardSpec, treated: VariantSample, control: VariantSample, more: int
) -> None:
    # given: the same treated requests, some of the successes now errors
    worse = VariantSample(treated.requests, min(treated.requests, treated.errors + more))
    # when
    before = guard_judge(guard=guard, treated=treated, control=control).state
    after = guard_judge(guard=guard, treated=worse, control=control).state
    # then
    if before == GuardState.TRIPPED:
        assert after == GuardState.TRIPPED


def test_guard_judge__one_below_the_minimum_on_either_side__gives_no_verdict() -> None:
    # given: a treated group failing every time, against a clean control
    guard = GuardSpec(margin_bp=100, min_sample=50, window_seconds=60)
    failing, clean = VariantSample(49, 49), VariantSample(1000, 0)
    # when / then: 49 treated outcomes are not enough, however bad
    assert guard_judge(guard=guard, treated=failing, control=clean).state == "insufficient"
    # nor 49 control outcomes
    many_failing = VariantSample(1000, 1000)
    assert (
        guard_judge(guard=guard, treated=many_failing, control=VariantSample(49, 0)).state
        == "insufficient"
    )
    # and at 50 each the verdict comes
    verdict = guard_judge(guard=guard, treated=VariantSample(50, 50), control=VariantSample(50, 0))
    assert verdict.state == GuardState.TRIPPED
    assert "100.00 % of 50" in verdict.explanation


def test_guard_judge__excess_exactly_at_the_margin__is_healthy_and_one_error_more_trips() -> None:
    # given: a 2-point margin; control 1 % of 1000, treated 3 % of 1000
    guard = GuardSpec(margin_bp=200, min_sample=100, window_seconds=60)
    control = VariantSample(1000, 10)
    # when / then: exactly 2 points above is within the margin
    assert guard_judge(guard=guard, treated=VariantSample(1000, 30), control=control).state == (
        GuardState.HEALTHY
    )
    # one error more is beyond it
    assert guard_judge(guard=guard, treated=VariantSample(1000, 31), control=control).state == (
        GuardState.TRIPPED
    )


def test_guard_judge__treated_better_than_control__is_healthy() -> None:
    guard = GuardSpec(margin_bp=1, min_sample=10, window_seconds=60)
    verdict = guard_judge(
        guard=guard, treated=VariantSample(100, 0), control=VariantSample(100, 50)
    )
    assert verdict.state == GuardState.HEALTHY
