"""Evaluation: every targeting rule, the order they are tried in (the kill switch
wins over everything), the reasons, and no database call per check."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from grayrelease.evaluation import client_flags, evaluate
from grayrelease.selectors import subject_for_ticket, subject_for_user
from grayrelease.services.features import feature_update
from grayrelease.types import FeatureSpec, Reason, Subject, TimeWindowSpec, VersionRangeSpec
from tests.factories import login_session, make_feature, make_user
from wechat_core.models import Campus, DataCenter
from wechat_core.services import campus_save

pytestmark = pytest.mark.django_db


def device_subject(user=None, **device) -> Subject:
    session = login_session(user or make_user(), **device)
    return subject_for_ticket(ticket=session.ticket, user_id=session.user.pk)


def test_evaluate__unknown_feature__is_off_with_its_reason() -> None:
    decision = evaluate(key="no.such.feature", subject=Subject(user_id=1))
    assert (decision.enabled, decision.reason, decision.variant) == (
        False,
        Reason.UNKNOWN_FEATURE,
        "off",
    )


def test_evaluate__hundred_percent_without_targeting__is_on_for_anyone() -> None:
    make_feature("chat.all", percentage_bp=10_000)
    decision = evaluate(key="chat.all", subject=device_subject())
    assert (decision.enabled, decision.reason, decision.variant) == (True, Reason.IN_ROLLOUT, "on")


def test_evaluate__kill_switch__wins_over_allow_list_and_full_rollout() -> None:
    # given: a feature at 100 % that lists Alice as a tester
    alice = make_user(wechat_id="alice_kill")
    make_feature("chat.kill", percentage_bp=10_000, allow=("alice_kill",))
    subject = device_subject(alice)
    assert evaluate(key="chat.kill", subject=subject).reason == Reason.ALLOWED
    # when: an operator pulls the kill switch
    feature_update(
        key="chat.kill",
        spec=FeatureSpec(key="chat.kill", percentage_bp=10_000, allow=("alice_kill",), killed=True),
        actor=None,
    )
    # then: off for her too, and for everyone
    assert evaluate(key="chat.kill", subject=subject).reason == Reason.KILLED
    assert not evaluate(key="chat.kill", subject=device_subject()).enabled


def test_evaluate__deny_list__beats_full_rollout_by_id_or_wechat_id() -> None:
    bob, carol = make_user(wechat_id="Bob_Deny"), make_user()
    make_feature("chat.deny", percentage_bp=10_000, deny=("bob_deny", str(carol.pk)))
    assert evaluate(key="chat.deny", subject=device_subject(bob)).reason == Reason.DENIED
    assert evaluate(key="chat.deny", subject=device_subject(carol)).reason == Reason.DENIED
    assert evaluate(key="chat.deny", subject=device_subject()).enabled


def test_evaluate__allow_list__beats_percentage_and_targeting() -> None:
    # given: 0 %, iOS only, and Dan (on the web) as a tester
    dan = make_user()
    make_feature("chat.allow", percentage_bp=0, platforms=("ios",), allow=(str(dan.pk),))
    assert evaluate(key="chat.allow", subject=device_subject(dan)).reason == Reason.ALLOWED
    assert evaluate(key="chat.allow", subject=device_subject(platform="ios")).reason == (
        Reason.OUT_OF_ROLLOUT
    )


def test_evaluate__platforms__target_the_device_platform() -> None:
    make_feature("chat.mobile", percentage_bp=10_000, platforms=("ios", "android"))
    assert evaluate(key="chat.mobile", subject=device_subject(platform="android")).enabled
    web = evaluate(key="chat.mobile", subject=device_subject(platform="web"))
    assert (web.enabled, web.reason) == (False, Reason.PLATFORM)
    # and a task acting for the user, outside any device, is not on a platform
    task = subject_for_user(user_id=make_user().pk)
    assert evaluate(key="chat.mobile", subject=task).reason == Reason.PLATFORM


def test_evaluate__version_ranges__are_half_open_semver_ranges() -> None:
    make_feature(
        "chat.versions",
        percentage_bp=10_000,
        version_ranges=(VersionRangeSpec("2.0.0", "2.5.0"), VersionRangeSpec("3.0.0-beta.1", None)),
    )
    expected = {
        "1.9.9": False,
        "2.0.0": True,
        "2.4.10": True,
        "2.5.0": False,
        "3.0.0-alpha.1": False,
        "3.0.0-beta.2": True,
        "3.0.0": True,
        "12.0.1": True,
    }
    for version, on in expected.items():
        decision = evaluate(key="chat.versions", subject=device_subject(client_version=version))
        assert decision.enabled is on, version
        assert decision.reason == (Reason.IN_ROLLOUT if on else Reason.CLIENT_VERSION)


def test_evaluate__datacenters_and_campuses__target_the_users_home() -> None:
    # given: Erin homed in Shanghai (sh-a), Frank in Hong Kong (hk-a)
    hk = DataCenter.objects.create(code="hk", name="Hong Kong")
    campus_save(campus=Campus(code="hk-a", datacenter=hk, name="HK A"), actor=None)
    campus_save(campus=Campus(code="hk-b", datacenter=hk, name="HK B"), actor=None)
    erin = make_user()
    with override_settings(DATACENTER="hk", CAMPUS="hk-a"):
        frank = make_user()
    make_feature("chat.hk", percentage_bp=10_000, datacenters=("hk",))
    make_feature("chat.hkb", percentage_bp=10_000, campuses=("hk-b",))
    make_feature("chat.sha", percentage_bp=10_000, datacenters=("sh",), campuses=("sh-a",))
    # then
    assert evaluate(key="chat.hk", subject=device_subject(frank)).enabled
    assert evaluate(key="chat.hk", subject=device_subject(erin)).reason == Reason.DATACENTER
    assert evaluate(key="chat.hkb", subject=device_subject(frank)).reason == Reason.CAMPUS
    assert evaluate(key="chat.sha", subject=device_subject(erin)).enabled
    # and tasks see the same homes
    assert evaluate(key="chat.hk", subject=subject_for_user(user_id=frank.pk)).enabled


def test_evaluate__time_windows__open_and_close_on_time() -> None:
    start = dt.datetime(2027, 1, 28, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=7)
    make_feature(
        "chat.spring",
        percentage_bp=10_000,
        time_windows=(
            TimeWindowSpec(start, end),
            TimeWindowSpec(end + dt.timedelta(days=30), None),
        ),
    )
    subject = device_subject()
    at = {
        start - dt.timedelta(seconds=1): False,
        start: True,
        end - dt.timedelta(seconds=1): True,
        end: False,
        end + dt.timedelta(days=31): True,
    }
    for moment, on in at.items():
        decision = evaluate(key="chat.spring", subject=subject, now=moment.timestamp())
        assert decision.enabled is on, moment
        assert decision.reason == (Reason.IN_ROLLOUT if on else Reason.OUTSIDE_TIME_WINDOW)


def test_evaluate__percentage__applies_to_the_targeted_users_only() -> None:
    # given: 50 % of iOS users
    make_feature("chat.half", percentage_bp=5000, platforms=("ios",))
    subjects = [Subject(user_id=u, platform="ios") for u in range(1, 2001)]
    # when
    on = [evaluate(key="chat.half", subject=s) for s in subjects]
    # then: about half, each either in or out of the rollout, never another reason
    assert 900 <= sum(d.enabled for d in on) <= 1100
    assert {d.reason for d in on} == {Reason.IN_ROLLOUT, Reason.OUT_OF_ROLLOUT}
    assert evaluate(key="chat.half", subject=Subject(user_id=1, platform="web")).reason == (
        Reason.PLATFORM
    )


def test_evaluate__once_loaded__makes_no_database_query(django_assert_num_queries) -> None:
    make_feature(
        "chat.fast",
        percentage_bp=5000,
        platforms=("web",),
        version_ranges=(VersionRangeSpec("1.0.0", None),),
    )
    subject = device_subject()
    evaluate(key="chat.fast", subject=subject)  # the process loads its copy once
    with django_assert_num_queries(0):
        for _ in range(1000):
            evaluate(key="chat.fast", subject=subject)
            client_flags(subject=subject)


def test_client_flags__list_only_client_visible_features_with_their_revision() -> None:
    make_feature("web.search", client_visible=True, percentage_bp=10_000)
    make_feature("server.only", percentage_bp=10_000)
    flags = client_flags(subject=device_subject())
    assert set(flags) == {"web.search"}
    assert (flags["web.search"].enabled, flags["web.search"].revision) == (True, 1)
