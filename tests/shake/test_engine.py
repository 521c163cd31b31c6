"""The access engine in this process, stepped by hand (its background work run by
`step`): reservations before issuing, caps from the signed record, the local cache
and the cross-process check through Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from shake import wire
from shake.access import Engine
from shake.models import Prize, PrizeState
from shake.schedule import stagger_group
from shake.signing import record_decode, win_check
from tests.factories import make_user
from tests.shake.conftest import approved_round
from wechat_core.cacheclient import redis_connect

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_registry() -> Iterator[None]:
    """A registry of this test's own (the key prefix), so no other engine counts."""
    with override_settings(SHAKE_REGISTRY=f"shake-test-{uuid.uuid4().hex[:8]}"):
        yield


def started(engines: int = 1) -> list[Engine]:
    result = [Engine() for _ in range(engines)]
    for engine in result:
        engine.step(force=True)
    for engine in result:  # every engine sees every other in the registry
        engine.step(force=True)
    return result


def shake_until_capped(
    engines: list[Engine], user_id: int, *, carry: bool, rounds: int = 200, cap: int = 0
) -> int:
    """A client shaking `rounds` times, hopping across `engines`, carrying its record
    (or dropping it); returns how many packets it won. With `cap`, it first shakes
    until it has won that many (up to 5000 times: a busy machine's Redis answers late
    and a shake is then answered without a packet), then `rounds` times more."""
    won = 0
    record: object = None
    attempt = 0

    def shake() -> None:
        nonlocal won, record, attempt
        answer = engines[attempt % len(engines)].shake(
            user_id=user_id, record_token=record if carry else None
        )
        attempt += 1
        won += answer.win is not None
        record = answer.record

    while won < cap and attempt < 5000:
        shake()
    for _ in range(rounds):
        shake()
    return won


def test_no_round__nothing_and_the_normal_interval() -> None:
    [engine] = started()
    answer = engine.shake(user_id=1, record_token=None)
    assert answer.round_id is None
    assert answer.win is None
    assert answer.interval == 5


def test_busy_process__the_longer_interval_and_tier_1__then_back_to_tier_0() -> None:
    # given: an engine whose busy threshold is 2 shakes a second
    [engine] = started()
    with override_settings(SHAKE_BUSY_SHAKES_PER_SECOND=2, SHAKE_BUSY_INTERVAL_SECONDS=9):
        # when: a second with 3 shakes, then a shake in a later second
        engine._shakes_second, engine._shakes_count = 0, 3  # a second with 3 shakes
        busy = engine.shake(user_id=1, record_token=None)
        # then: the longer interval, tier 1
        assert (busy.interval, busy.tier) == (9, 1)
        # and: the page's countdown source says the same, without counting a shake
        assert (engine.schedule_now(user_id=1).interval, engine.schedule_now(user_id=1).tier) == (
            9,
            1,
        )
        # when: the last second with shakes had one
        engine._shakes_second, engine._shakes_count = 0, 1
        calm = engine.shake(user_id=1, record_token=None)
        # then: the normal interval, tier 0
        assert (calm.interval, calm.tier) == (5, 0)


def test_schedule_now__the_running_round_or_the_next__without_shaking() -> None:
    # given: no round, then a round starting in 20 s
    [engine] = started()
    assert engine.schedule_now(user_id=1).schedule is None
    round_ = approved_round(starts_in=20)
    engine.step(force=True)
    # when: the page asks before any shake
    before = engine.schedule_now(user_id=1)
    # then: no round issuing, the next one's schedule (its countdown) and its token
    assert before.round_id is None
    assert before.schedule is not None
    assert before.schedule.round_id == round_.pk
    assert before.schedule_token
    assert before.win is None
    assert engine._shakes_count == 0


def test_reserved_before_issued__each_prize_held_by_one_engine() -> None:
    approved_round(prizes_each=100, slices=2)
    first, second = started(2)
    held_first = {p.prize_id for state in first.rounds.values() for p in state.held}
    held_second = {p.prize_id for state in second.rounds.values() for p in state.held}
    assert held_first
    assert held_second
    assert not held_first & held_second
    rows = Prize.objects.filter(pk__in=held_first | held_second)
    assert {(row.state, row.reserved_by) for row in rows} == {
        (PrizeState.RESERVED, first.owner),
        (PrizeState.RESERVED, second.owner),
    }
    assert {first.slot, second.slot} == {0, 1}
    assert first.live_processes == 2


def test_a_win__signed_for_its_winner__recorded_at_the_flush() -> None:
    approved_round()
    [engine] = started()
    user = make_user()
    answer = engine.shake(user_id=user.pk, record_token=None)
    assert answer.win is not None
    prize = answer.win.prize
    assert win_check(
        answer.win.signature,
        prize_id=prize.prize_id,
        round_id=prize.round_id,
        user_id=user.pk,
        amount=prize.amount,
        sponsor_id=prize.sponsor_id,
    )
    assert not win_check(
        answer.win.signature,
        prize_id=prize.prize_id,
        round_id=prize.round_id,
        user_id=user.pk + 1,
        amount=prize.amount,
        sponsor_id=prize.sponsor_id,
    )
    record = record_decode(answer.record, round_id=prize.round_id, user_id=user.pk)
    assert record is not None
    assert record.wins == {(prize.prize_id, prize.sponsor_id)}
    assert engine.flush() == 1
    row = Prize.objects.get(pk=prize.prize_id)
    assert (row.state, row.winner_id) == (PrizeState.ISSUED, user.pk)


def test_caps__record_carried__three_packets_one_per_sponsor() -> None:
    approved_round()
    [engine] = started()
    user = make_user()
    record: object = None
    sponsors: list[int] = []
    for _ in range(50):
        answer = engine.shake(user_id=user.pk, record_token=record)
        record = answer.record
        if answer.win:
            sponsors.append(answer.win.prize.sponsor_id)
    assert len(sponsors) == 3
    assert len(set(sponsors)) == 3
    assert engine.shake(user_id=user.pk, record_token=record).capped


def test_caps__the_win_that_reaches_the_cap__says_capped() -> None:
    # given: a user who has won two packets (cap 3)
    approved_round()
    [engine] = started()
    user = make_user()
    record: object = None
    answers = []
    # when: they shake until a third win
    for _ in range(50):
        answer = engine.shake(user_id=user.pk, record_token=record)
        record = answer.record
        if answer.win:
            answers.append(answer)
        if len(answers) == 3:
            break
    # then: the first two wins say not capped, the third says capped (the client stops
    # without asking once more)
    assert [a.capped for a in answers] == [False, False, True]


def test_caps__record_dropped_on_one_process__the_local_cache_holds() -> None:
    approved_round()
    [engine] = started()
    assert shake_until_capped([engine], make_user().pk, carry=False, cap=3) == 3


def test_caps__record_dropped_hopping_four_processes__redis_holds() -> None:
    approved_round()
    engines = started(4)
    assert shake_until_capped(engines, make_user().pk, carry=False, cap=3) == 3


def test_caps__a_sponsor_won_on_another_process__the_other_sponsors_still_win() -> None:
    # given: a user who won one sponsor's packet on the first of two processes
    approved_round()
    first, second = started(2)
    user = make_user()
    won_first = None
    for _ in range(200):
        answer = first.shake(user_id=user.pk, record_token=None)
        if answer.win:
            won_first = answer.win.prize.sponsor_id
            break
    assert won_first is not None
    # and: the second process, which never saw that win, holds that sponsor's next
    [state] = second.rounds.values()
    assert any(prize.sponsor_id == won_first for prize in state.held)
    while state.held[0].sponsor_id != won_first:
        state.held.rotate(-1)
    # when: the user shakes the second one without a record
    sponsors = []
    for _ in range(200):
        answer = second.shake(user_id=user.pk, record_token=None)
        if answer.win:
            sponsors.append(answer.win.prize.sponsor_id)
    # then: refused that sponsor again (Redis), the user still wins the two others
    assert len(sponsors) == len(set(sponsors)) == 2, sponsors
    assert won_first not in sponsors


def test_caps__record_dropped_hopping_with_redis_down__each_process_caps_alone() -> None:
    """Best effort: without the cross-process check, each process caps on its own
    cache, so a cheater hopping N processes gets at most N times the cap (and
    shaking goes on)."""
    approved_round()
    engines = started(4)
    for engine in engines:  # Redis down, reached the way the engine reaches it
        engine._redis = redis_connect("redis://127.0.0.1:1/0", timeout=0.05)
    won = shake_until_capped(engines, make_user().pk, carry=False)
    print(f"cheater with the cross-process check down: {won} packets (cap 3, 4 processes)")
    assert 3 < won <= 4 * 3


def test_invalid_record__ignored__not_an_error() -> None:
    approved_round()
    [engine] = started()
    answer = engine.shake(user_id=make_user().pk, record_token="forged.record")
    assert answer.round_id is not None


def test_record_and_signature__not_ascii__refused_quietly() -> None:
    from shake.signing import record_decode, win_check

    assert record_decode("\udbf6x.\u7f3c", round_id=1, user_id=1) is None
    assert not win_check("\u7f3c" * 64, prize_id=1, round_id=1, user_id=1, amount=1, sponsor_id=1)


def users_in_groups(groups: int) -> dict[int, int]:
    """A user of each of `groups` staggered groups: group → user id."""
    found: dict[int, int] = {}
    while len(found) < groups:
        user = make_user()
        found.setdefault(stagger_group(user_id=user.pk, groups=groups), user.pk)
    return found


@override_settings(SHAKE_STAGGER_GROUPS=3)
def test_staggered_round__a_later_group_is_told_to_come_back_at_its_start__without_the_database(
    django_assert_num_queries: Any,
) -> None:
    # given: a round started 30 s ago whose 3 groups start 60 s apart; a user of each
    round_ = approved_round(starts_in=-30, stagger=60)
    users = users_in_groups(3)
    [engine] = started()
    state = engine.rounds[round_.pk]
    starts, held = state.view.starts, len(state.held)
    # when: the users of groups 1 and 2 shake (not their turn yet)
    with django_assert_num_queries(0):
        second = engine.shake(user_id=users[1], record_token=None)
        third = engine.shake(user_id=users[2], record_token=None)
    # then: refused without a draw: not yet, come back at the group's start, which the
    # interval counts down to (about 30 s and 90 s)
    for answer, group in ((second, 1), (third, 2)):
        assert (answer.not_yet, answer.win, answer.group) == (True, None, group)
        assert answer.opens == starts + group * 60
        assert answer.round_id == round_.pk
        assert answer.opens - 2 < time.time() + answer.interval <= answer.opens + 2
    assert len(state.held) == held
    assert wire.shake_json(third)["result"] == "not_yet"
    assert wire.shake_json(third)["group"]["index"] == 2
    # and: the page's countdown source tells each user their own group's start
    assert engine.schedule_now(user_id=users[2]).opens == starts + 120
    assert engine.schedule_now(user_id=users[0]).opens == starts
    # when: the user of group 0 shakes (its turn since the round's start)
    first = engine.shake(user_id=users[0], record_token=None)
    # then: a draw as in any round
    assert not first.not_yet
    assert first.win is not None
    assert (first.group, first.opens) == (0, starts)


@override_settings(SHAKE_STAGGER_GROUPS=3)
def test_staggered_round__a_group_shakes_once_its_start_passed() -> None:
    # given: a round whose group 1 started 10 s ago (the round 70 s ago, 60 s apart)
    round_ = approved_round(starts_in=-70, stagger=60)
    users = users_in_groups(3)
    [engine] = started()
    # when: the users of groups 1 and 2 shake
    second = engine.shake(user_id=users[1], record_token=None)
    third = engine.shake(user_id=users[2], record_token=None)
    # then: group 1 draws; group 2 still waits for its start
    assert (second.not_yet, second.round_id) == (False, round_.pk)
    assert second.win is not None
    assert third.not_yet


def test_stagger_group__stable_and_spread_evenly() -> None:
    groups = [stagger_group(user_id=user_id, groups=5) for user_id in range(1, 10_001)]
    assert groups == [stagger_group(user_id=user_id, groups=5) for user_id in range(1, 10_001)]
    counts = [groups.count(g) for g in range(5)]
    assert all(1800 < count < 2200 for count in counts), counts
    assert stagger_group(user_id=7, groups=1) == 0
