"""WeChat IDs: chosen once; unique ignoring case; the rules of the ID itself."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.exceptions import WeChatIdAlreadySet, WeChatIdTaken
from accounts.models import User, WeChatIdClaim
from accounts.services.wechat_ids import wechat_id_claim
from accounts.validators import validate_wechat_id
from tests.factories import login_session, make_user
from tests.support.concurrency import run_together


def claim(session: Any, wechat_id: str) -> Any:
    return APIClient().put(
        "/api/accounts/me/wechat-id",
        {"wechat_id": wechat_id},
        format="json",
        headers=session.headers,
    )


@pytest.mark.django_db
def test_claim__valid_id__is_set_and_registered_with_the_home_datacenter() -> None:
    alice = make_user()
    response = claim(login_session(alice), "Alice_2026")
    assert response.status_code == 200
    assert response.json()["wechat_id"] == "Alice_2026"
    registry = WeChatIdClaim.objects.get(user=alice)
    assert (registry.normalized, registry.datacenter) == ("alice_2026", alice.home_datacenter_id)


@pytest.mark.django_db
def test_claim__same_id_in_another_case__is_409_taken() -> None:
    claim(login_session(make_user()), "Alice_2026")
    response = claim(login_session(make_user()), "aLICE_2026")
    assert response.status_code == 409
    assert response.json()["code"] == "wechat_id_taken"


@pytest.mark.django_db
def test_claim__a_second_time__is_409_already_set_and_keeps_the_first() -> None:
    alice = make_user()
    session = login_session(alice)
    claim(session, "first_choice")
    response = claim(session, "second_choice")
    assert response.status_code == 409
    assert response.json()["code"] == "wechat_id_already_set"
    alice.refresh_from_db()
    assert alice.wechat_id == "first_choice"
    assert not WeChatIdClaim.objects.filter(normalized="second_choice").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "wechat_id",
    ["abcde", "a" * 21, "1abcdef", "_abcdef", "abc def", "abcdé12", "abc.def", "system", "WeChat"],
)
def test_claim__id_breaking_the_rules__is_400(wechat_id: str) -> None:
    alice = make_user()
    response = claim(login_session(alice), wechat_id)
    assert response.status_code == 400
    assert "wechat_id" in response.json()["details"]["fields"]
    alice.refresh_from_db()
    assert alice.wechat_id is None


def _follows_the_rules(candidate: str) -> bool:
    """The rules, restated independently of the validator's regular expression."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    return (
        6 <= len(candidate) <= 20
        and candidate[0].isascii()
        and candidate[0].isalpha()
        and all(character in allowed for character in candidate)
    )


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=24))
def test_validate_wechat_id__accepts_exactly_the_ids_that_follow_the_rules(candidate: str) -> None:
    expected = (
        _follows_the_rules(candidate) and candidate.lower() not in settings.WECHAT_ID_RESERVED
    )
    try:
        validate_wechat_id(candidate)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == expected


@given(st.from_regex(re.compile(r"[A-Za-z][A-Za-z0-9_-]{5,19}"), fullmatch=True))
def test_validate_wechat_id__every_well_formed_id__is_accepted_unless_reserved(
    candidate: str,
) -> None:
    reserved = candidate.lower() in settings.WECHAT_ID_RESERVED
    try:
        validate_wechat_id(candidate)
        assert not reserved
    except ValidationError:
        assert reserved


@pytest.mark.django_db(transaction=True)
def test_claim__many_users_race_for_one_id__exactly_one_wins() -> None:
    # given: 16 users, each logged in
    sessions = [login_session(make_user()) for _ in range(16)]
    # when: all claim "HotName" (in various cases) at the same moment
    calls = [
        partial(wechat_id_claim, ticket=s.ticket, user_id=s.user.pk,
                wechat_id="HotName" if i % 2 else "hotname")
        for i, s in enumerate(sessions)
    ]  # fmt: skip
    outcomes = run_together(calls)
    # then: one winner; every other claimant gets the clear "taken" error
    winners = [o for o in outcomes if o.error is None]
    assert len(winners) == 1
    assert all(isinstance(o.error, WeChatIdTaken) for o in outcomes if o.error is not None)
    assert WeChatIdClaim.objects.filter(normalized="hotname").count() == 1
    assert User.objects.filter(wechat_id__iexact="hotname").count() == 1
    assert User.objects.get(wechat_id__iexact="hotname").pk == winners[0].value.pk


@pytest.mark.django_db(transaction=True)
def test_claim__one_user_claims_several_ids_at_once__exactly_one_sticks() -> None:
    session = login_session(make_user())
    claim_for_me = partial(wechat_id_claim, ticket=session.ticket, user_id=session.user.pk)
    calls = [partial(claim_for_me, wechat_id=f"choice_{n}") for n in range(8)]
    outcomes = run_together(calls)
    assert sum(o.error is None for o in outcomes) == 1
    assert all(isinstance(o.error, WeChatIdAlreadySet) for o in outcomes if o.error is not None)
    assert WeChatIdClaim.objects.filter(user=session.user).count() == 1
