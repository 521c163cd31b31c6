"""The split of a packet into shares, for any total and number of shares: lucky
draws and equal shares always sum exactly to the total, each at least 1 fen."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from redpackets.splitting import equal_share, lucky_draw

totals_and_shares = st.integers(min_value=1, max_value=100).flatmap(
    lambda shares: st.tuples(st.integers(min_value=shares, max_value=10**7), st.just(shares))
)


@settings(max_examples=500)
@given(totals_and_shares, st.integers(min_value=0, max_value=2**32))
def test_lucky_draws__sum_exactly_to_the_total__each_at_least_one_fen(
    packet: tuple[int, int], seed: int
) -> None:
    total, shares = packet
    rng = random.Random(seed)
    remaining, draws = total, []
    for left in range(shares, 0, -1):
        draw = lucky_draw(remaining, left, randbelow=rng.randrange)
        draws.append(draw)
        remaining -= draw
    assert sum(draws) == total
    assert min(draws) >= 1
    assert len(draws) == shares


@given(totals_and_shares, st.sampled_from(["lowest", "highest"]))
def test_lucky_draws__at_the_extremes_of_each_draw__still_leave_a_fen_per_share(
    packet: tuple[int, int], extreme: str
) -> None:
    # Every draw its smallest (1 fen) or its largest possible value.
    total, shares = packet
    remaining, draws = total, []
    for left in range(shares, 0, -1):
        draw = lucky_draw(
            remaining, left, randbelow=(lambda n: 0) if extreme == "lowest" else (lambda n: n - 1)
        )
        draws.append(draw)
        remaining -= draw
    assert sum(draws) == total
    assert min(draws) >= 1


@given(totals_and_shares)
def test_lucky_draw__never_above_twice_the_remaining_mean(packet: tuple[int, int]) -> None:
    total, shares = packet
    draw = lucky_draw(total, shares, randbelow=lambda n: n - 1)
    assert shares == 1 or draw <= max(1, 2 * total // shares)


@given(totals_and_shares)
def test_equal_shares__sum_exactly_and_differ_by_at_most_one_fen(packet: tuple[int, int]) -> None:
    total, shares = packet
    amounts = [equal_share(total, shares, index) for index in range(shares)]
    assert sum(amounts) == total
    assert min(amounts) >= 1
    assert max(amounts) - min(amounts) <= 1
