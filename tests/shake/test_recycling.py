"""A dead owner's reservation is never handed out again under its ids: after the
open window its unopened prizes come back to the pool as new prizes."""

from __future__ import annotations

import pytest
from django.test import override_settings

from shake.models import Prize, PrizeState
from shake.services.reserving import prizes_recycle, prizes_reserve
from shake.signing import prize_sign
from tests.shake.conftest import approved_round

pytestmark = pytest.mark.django_db


@override_settings(SHAKE_OPEN_SECONDS=1)
def test_recycle__after_the_open_window__new_ids_same_amounts_old_rows_closed() -> None:
    round_ = approved_round(prizes_each=4, duration=10, starts_in=-100, slices=1)
    held = prizes_reserve(round_id=round_.pk, slice_=0, owner="dead-owner", count=5)
    live = prizes_reserve(round_id=round_.pk, slice_=0, owner="live-owner", count=2)

    assert prizes_recycle(live_owners={"live-owner"}) == 5

    old = Prize.objects.filter(pk__in=[p.prize_id for p in held])
    assert {row.state for row in old} == {PrizeState.RECYCLED}
    new = Prize.objects.filter(pk__in=[row.recycled_as_id for row in old])
    assert {row.state for row in new} == {PrizeState.POOL}
    assert sorted(row.amount for row in new) == sorted(p.amount for p in held)
    assert not {row.pk for row in new} & {p.prize_id for p in held}
    for row in new:
        assert row.signature == prize_sign(
            prize_id=row.pk, round_id=round_.pk, amount=row.amount, kind=row.kind,
            sponsor_id=row.sponsor_id, extra_shares=row.extra_shares,
            extra_amount=row.extra_amount,
        )  # fmt: skip
    still_live = Prize.objects.filter(pk__in=[p.prize_id for p in live])
    assert {row.state for row in still_live} == {PrizeState.RESERVED}


def test_recycle__within_the_open_window__nothing_moves() -> None:
    round_ = approved_round(prizes_each=4, duration=10, starts_in=-100, slices=1)
    prizes_reserve(round_id=round_.pk, slice_=0, owner="dead-owner", count=5)
    assert prizes_recycle(live_owners=set()) == 0
