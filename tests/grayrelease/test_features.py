"""Writing features: every change audited (who, when, before, after), revisions,
concurrency, and bad rules refused with a message naming the field."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from grayrelease.evaluation import evaluate
from grayrelease.exceptions import FeatureChanged, FeatureExists, InvalidRule
from grayrelease.models import ChangeAction, Feature, FeatureChange, PushStatus
from grayrelease.selectors import feature_changes, feature_get, feature_spec
from grayrelease.services.features import (
    feature_create,
    feature_delete,
    feature_percentage_set,
    feature_set_killed,
    feature_update,
)
from grayrelease.types import FeatureSpec, StageSpec, Subject, TimeWindowSpec, VersionRangeSpec
from tests.factories import make_feature, make_user

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def state(value: Any) -> dict[str, Any]:
    """An audit record's state (present)."""
    assert isinstance(value, dict)
    return value


def test_feature_create__records_who_and_the_whole_state_after() -> None:
    # given: an operator
    operator = make_user(nickname="Olga")
    # when
    feature = feature_create(
        spec=FeatureSpec(key="chat.new", percentage_bp=100), actor=operator, comment="first 1 %"
    )
    # then
    change = feature_changes(key="chat.new").get()
    assert (change.action, change.actor, change.revision, change.comment) == (
        ChangeAction.CREATED,
        operator,
        1,
        "first 1 %",
    )
    assert change.actor_label.startswith("Olga")
    assert change.before is None
    assert state(change.after)["spec"]["percentage_bp"] == 100
    assert state(change.after)["revision"] == feature.revision == 1
    assert change.created_at is not None
    assert change.push_status == PushStatus.NOT_NEEDED  # not client-visible


def test_feature_update__audits_before_and_after_and_bumps_the_revision() -> None:
    operator = make_user()
    make_feature("chat.edit", percentage_bp=100)
    # when: widened, then killed, then revived
    feature_percentage_set(key="chat.edit", percentage_bp=500, actor=operator, comment="looks ok")
    feature_set_killed(key="chat.edit", killed=True, actor=operator, comment="crash reports")
    feature_set_killed(key="chat.edit", killed=False, actor=operator)
    # then: every change is in the trail, newest first
    trail = list(feature_changes(key="chat.edit"))
    assert [c.action for c in trail] == [
        ChangeAction.REVIVED,
        ChangeAction.KILLED,
        ChangeAction.UPDATED,
        ChangeAction.CREATED,
    ]
    assert [c.revision for c in trail] == [4, 3, 2, 1]
    widened = trail[2]
    assert (
        state(widened.before)["spec"]["percentage_bp"],
        state(widened.after)["spec"]["percentage_bp"],
    ) == (
        100,
        500,
    )
    assert (state(trail[1].before)["spec"]["killed"], state(trail[1].after)["spec"]["killed"]) == (
        False,
        True,
    )
    assert feature_get(key="chat.edit").revision == 4


def test_feature_update__same_rules_again__changes_and_audits_nothing() -> None:
    make_feature("chat.same", percentage_bp=100, platforms=("ios",))
    feature_update(
        key="chat.same",
        spec=FeatureSpec(key="chat.same", percentage_bp=100, platforms=("ios",)),
        actor=None,
    )
    assert feature_changes(key="chat.same").count() == 1
    assert feature_get(key="chat.same").revision == 1


def test_feature_update__is_in_effect_in_this_process_at_once() -> None:
    make_feature("chat.now", percentage_bp=0)
    subject = Subject(user_id=7)
    assert not evaluate(key="chat.now", subject=subject).enabled
    feature_percentage_set(key="chat.now", percentage_bp=10_000, actor=None)
    assert evaluate(key="chat.now", subject=subject).enabled


def test_feature_update__with_a_stale_revision__is_refused_and_changes_nothing() -> None:
    # given: two operators read revision 1; the first saves
    make_feature("chat.race", percentage_bp=100)
    feature_update(
        key="chat.race",
        spec=FeatureSpec(key="chat.race", percentage_bp=200),
        actor=None,
        expected_revision=1,
    )
    # when: the second saves what they read
    with pytest.raises(FeatureChanged) as refused:
        feature_update(
            key="chat.race",
            spec=FeatureSpec(key="chat.race", percentage_bp=900),
            actor=None,
            expected_revision=1,
        )
    # then
    assert refused.value.details["revision"] == 2
    assert feature_get(key="chat.race").percentage_bp == 200


def test_feature_create__existing_key__is_refused() -> None:
    make_feature("chat.dup")
    with pytest.raises(FeatureExists):
        make_feature("chat.dup")


def test_feature_delete__keeps_the_audit_trail_and_turns_the_feature_off() -> None:
    make_feature("chat.gone", percentage_bp=10_000, client_visible=True)
    assert evaluate(key="chat.gone", subject=Subject(user_id=3)).enabled
    feature_delete(key="chat.gone", actor=None, comment="shipped for good")
    assert not Feature.objects.filter(key="chat.gone").exists()
    assert not evaluate(key="chat.gone", subject=Subject(user_id=3)).enabled
    deleted = feature_changes(key="chat.gone").first()
    assert deleted is not None
    assert (deleted.action, deleted.revision, deleted.after) == (ChangeAction.DELETED, 2, None)
    assert state(deleted.before)["spec"]["client_visible"] is True
    assert deleted.push_status == PushStatus.PENDING  # devices that had it learn it is off


def test_feature_update__children_and_lists__round_trip_through_the_spec() -> None:
    spec = FeatureSpec(
        key="chat.full",
        description="All rules",
        client_visible=True,
        percentage_bp=1234,
        allow=(str(make_user().pk),),
        deny=("carol_full",),
        platforms=("ios", "web"),
        datacenters=("sh",),
        campuses=("sh-a",),
        version_ranges=(VersionRangeSpec("1.0.0", "2.0.0"), VersionRangeSpec("3.0.0", None)),
        time_windows=(TimeWindowSpec(T0, T0 + dt.timedelta(days=1)),),
        stages=(StageSpec(100, 60), StageSpec(10_000, 0)),
    )
    make_user(wechat_id="carol_full")
    feature_create(spec=spec, actor=None)
    assert feature_spec(feature=feature_get(key="chat.full")) == spec


# --- Bad input: refused, with a clear message naming the field --------------------------

BAD: dict[str, tuple[dict[str, Any], str, str]] = {
    "overlapping version ranges": (
        {"version_ranges": (VersionRangeSpec("1.0.0", "2.0.0"), VersionRangeSpec("1.5.0", None))},
        "version_ranges",
        "overlap",
    ),
    "two open-ended version ranges": (
        {"version_ranges": (VersionRangeSpec(None, "2.0.0"), VersionRangeSpec(None, "1.0.0"))},
        "version_ranges",
        "overlap",
    ),
    "invalid version": (
        {"version_ranges": (VersionRangeSpec("2.0", None),)},
        "version_ranges",
        "not a semantic version",
    ),
    "empty version range": (
        {"version_ranges": (VersionRangeSpec("2.0.0", "2.0.0"),)},
        "version_ranges",
        "empty",
    ),
    "percentage above 100 %": ({"percentage_bp": 10_001}, "percentage_bp", "between"),
    "negative percentage": ({"percentage_bp": -1}, "percentage_bp", "between"),
    "overlapping time windows": (
        {
            "time_windows": (
                TimeWindowSpec(T0, T0 + dt.timedelta(days=2)),
                TimeWindowSpec(T0 + dt.timedelta(days=1), None),
            )
        },
        "time_windows",
        "overlap",
    ),
    "window ending before it starts": (
        {"time_windows": (TimeWindowSpec(T0, T0 - dt.timedelta(hours=1)),)},
        "time_windows",
        "ends before it starts",
    ),
    "stages that narrow": ({"stages": (StageSpec(500, 60), StageSpec(100, 60))}, "stages", "widen"),
    "stage above 100 %": ({"stages": (StageSpec(20_000, 60),)}, "stages", "between"),
    "unknown platform": ({"platforms": ("symbian",)}, "platforms", "symbian"),
    "unknown campus": ({"campuses": ("mars-a",)}, "campuses", "mars-a"),
    "campus outside the data centres": (
        {"datacenters": ("hk",), "campuses": ("sh-a",)},
        "campuses",
        "outside",
    ),
    "unknown user": ({"allow": ("999999999",)}, "allow", "no such user"),
    "not a user at all": ({"deny": ("@@@",)}, "deny", "neither a user id nor a WeChat ID"),
    "bad key": ({"key": "Has Spaces"}, "key", "lower-case"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_feature_create__bad_rules__are_refused_naming_the_field(case: str) -> None:
    from wechat_core.models import Campus, DataCenter
    from wechat_core.services import campus_save

    hk = DataCenter.objects.create(code="hk", name="Hong Kong")
    campus_save(campus=Campus(code="hk-a", datacenter=hk, name="HK A"), actor=None)
    changes, field, words = BAD[case]
    spec = replace(FeatureSpec(key="chat.bad"), **changes)
    with pytest.raises(InvalidRule) as refused:
        feature_create(spec=spec, actor=None)
    assert refused.value.field == field
    assert words in refused.value.message
    assert refused.value.code == "invalid_rule"
    assert not Feature.objects.exists()
    assert not FeatureChange.objects.exists()


def test_feature_create__user_allowed_and_denied__is_refused() -> None:
    user = make_user(wechat_id="both_ways")
    with pytest.raises(InvalidRule, match="allowed and denied"):
        make_feature("chat.both", allow=("Both_Ways",), deny=("both_ways", str(user.pk)))


def test_feature_update__key_cannot_change() -> None:
    make_feature("chat.key")
    with pytest.raises(InvalidRule, match="key cannot change"):
        feature_update(key="chat.key", spec=FeatureSpec(key="chat.other"), actor=None)
