"""Input and output shapes of the flags endpoint and the operators' feature API.

Inputs check JSON types only; every rule (ranges, versions, percentages,
overlaps, users that exist) is the service's, which answers `invalid_rule`
naming the field. The schema states the rules' limits (`openapi_limits`,
wechat_core.api.schema) without the serializers checking them first.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from grayrelease.bucketing import BASIS_POINTS
from grayrelease.models import ChangeAction, PushStatus
from grayrelease.rules import (
    DESCRIPTION_MAX,
    GUARD_SAMPLE_MAX,
    GUARD_SAMPLE_MIN,
    GUARD_WINDOW_MAX,
    KEY_PATTERN,
    SOAK_MINUTES_MAX,
)
from grayrelease.types import (
    FeatureSpec,
    GuardAction,
    GuardSpec,
    StageSpec,
    TimeWindowSpec,
    VersionRangeSpec,
)
from wechat_core.api.fields import FlagOutput, StrictBooleanField, StrictCharField

TEXT_MAX = 512
SCHEDULE_ACTIONS = ("start", "pause", "resume")
GUARD_ACTIONS = tuple(action.value for action in GuardAction)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


def _names(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(child=StrictCharField(max_length=64), required=False, **kwargs)


# --- Clients ------------------------------------------------------------------------


class FlagsOutput(serializers.Serializer[Any]):
    flags = serializers.DictField(
        child=FlagOutput(), help_text="Every client-visible feature, by key."
    )


# --- Operators: inputs ------------------------------------------------------------------


class VersionRangeInput(serializers.Serializer[VersionRangeSpec]):
    min_version = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=64,
        help_text="Inclusive; null: no minimum.",
    )
    max_version = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=64,
        help_text="Exclusive; null: no maximum.",
    )


class TimeWindowInput(serializers.Serializer[TimeWindowSpec]):
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)


class StageInput(serializers.Serializer[StageSpec]):
    percentage_bp = StrictIntegerField(
        help_text="Basis points: 100 = 1 %; each stage wider than the one before."
    )
    soak_minutes = StrictIntegerField(help_text="Least time at this stage.")

    openapi_limits = {
        "percentage_bp": {"minimum": 1, "maximum": BASIS_POINTS},
        "soak_minutes": {"minimum": 0, "maximum": SOAK_MINUTES_MAX},
    }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A PATCH (partial) skips missing fields at every depth; a stage is whole.
        missing = {
            name: ["This field is required."]
            for name in ("percentage_bp", "soak_minutes")
            if name not in attrs
        }
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class GuardInput(serializers.Serializer[GuardSpec]):
    margin_bp = StrictIntegerField(
        required=False, help_text="Treated error rate over the control's, 100 = 1 point."
    )
    min_sample = StrictIntegerField(required=False, help_text="Outcomes per variant, at least.")
    window_seconds = StrictIntegerField(required=False)
    action = StrictCharField(required=False, max_length=16, help_text='"pause" or "rollback".')

    openapi_limits = {
        "margin_bp": {"minimum": 1, "maximum": BASIS_POINTS},
        "min_sample": {"minimum": GUARD_SAMPLE_MIN, "maximum": GUARD_SAMPLE_MAX},
        "window_seconds": {
            "minimum": max(10, 2 * settings.MONITORING_FLUSH_SECONDS),
            "maximum": GUARD_WINDOW_MAX,
        },
        "action": {"enum": list(GUARD_ACTIONS)},
    }


class FeatureInput(serializers.Serializer[Any]):
    key = StrictCharField(max_length=TEXT_MAX, required=False)
    description = StrictCharField(max_length=2000, required=False, allow_blank=True)
    client_visible = StrictBooleanField(required=False)
    killed = StrictBooleanField(required=False, help_text="The kill switch.")
    percentage_bp = StrictIntegerField(required=False, help_text="0-10000; 100 = 1 %.")
    allow = _names(
        help_text="User ids (as strings) or WeChat IDs that always get it; at most "
        f"{settings.GRAYRELEASE_TARGET_LIST_MAX} distinct users."
    )
    deny = _names(
        help_text="User ids (as strings) or WeChat IDs that never get it; at most "
        f"{settings.GRAYRELEASE_TARGET_LIST_MAX} distinct users."
    )
    platforms = _names(help_text="Empty: every platform.")
    datacenters = _names(help_text="Users' home data centres; empty: all.")
    campuses = _names(help_text="Users' home campuses; empty: all.")
    version_ranges = VersionRangeInput(many=True, required=False)
    time_windows = TimeWindowInput(many=True, required=False)
    stages = StageInput(many=True, required=False)
    guard = GuardInput(
        required=False,
        allow_null=True,
        help_text="A rollout guard (settings left out take their defaults); null: not guarded.",
    )
    comment = StrictCharField(
        max_length=200, required=False, allow_blank=True, help_text="Why; kept in the audit trail."
    )
    revision = StrictIntegerField(required=False, help_text="Refuse if the feature moved past it.")

    openapi_limits = {
        "key": {"pattern": KEY_PATTERN.pattern, "maxLength": 64},
        "description": {"maxLength": DESCRIPTION_MAX},
        "percentage_bp": {"minimum": 0, "maximum": BASIS_POINTS},
        "platforms": {"items": {"$ref": "#/components/schemas/PlatformEnum"}},
        "version_ranges": {"maxItems": settings.GRAYRELEASE_RANGES_MAX},
        "time_windows": {"maxItems": settings.GRAYRELEASE_RANGES_MAX},
        "stages": {"maxItems": settings.GRAYRELEASE_STAGES_MAX},
    }

    SPEC_FIELDS = (
        "description",
        "client_visible",
        "killed",
        "percentage_bp",
        "allow",
        "deny",
        "platforms",
        "datacenters",
        "campuses",
    )

    @classmethod
    def spec_changes(cls, data: dict[str, Any]) -> dict[str, Any]:
        """FeatureSpec fields of validated data (only those given)."""
        changes: dict[str, Any] = {}
        for name in cls.SPEC_FIELDS:
            if name in data:
                value = data[name]
                changes[name] = tuple(value) if isinstance(value, list) else value
        if "version_ranges" in data:
            changes["version_ranges"] = tuple(
                VersionRangeSpec(r.get("min_version"), r.get("max_version"))
                for r in data["version_ranges"]
            )
        if "time_windows" in data:
            changes["time_windows"] = tuple(
                TimeWindowSpec(w.get("starts_at"), w.get("ends_at")) for w in data["time_windows"]
            )
        if "stages" in data:
            changes["stages"] = tuple(
                StageSpec(s["percentage_bp"], s["soak_minutes"]) for s in data["stages"]
            )
        if "guard" in data:
            changes["guard"] = None if data["guard"] is None else GuardSpec(**data["guard"])
        return changes

    @classmethod
    def spec(cls, data: dict[str, Any], *, key: str) -> FeatureSpec:
        return FeatureSpec(key=key, **cls.spec_changes(data))


class FeatureCreateInput(FeatureInput):
    """FeatureInput as POST /features and /preview read it: the key is required."""

    openapi_required = ("key",)


class KillSwitchInput(serializers.Serializer[Any]):
    killed = StrictBooleanField()
    comment = StrictCharField(max_length=200, required=False, allow_blank=True)


class ScheduleInput(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=SCHEDULE_ACTIONS)
    comment = StrictCharField(max_length=200, required=False, allow_blank=True)


class DeleteInput(serializers.Serializer[Any]):
    comment = StrictCharField(max_length=200, required=False, allow_blank=True)


# --- Operators: outputs -------------------------------------------------------------------


class VersionRangeOutput(serializers.Serializer[VersionRangeSpec]):
    min_version = serializers.CharField(allow_null=True)
    max_version = serializers.CharField(allow_null=True)


class TimeWindowOutput(serializers.Serializer[TimeWindowSpec]):
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)


class StageOutput(serializers.Serializer[StageSpec]):
    percentage_bp = serializers.IntegerField()
    soak_minutes = serializers.IntegerField()


class GuardOutput(serializers.Serializer[GuardSpec]):
    margin_bp = serializers.IntegerField()
    min_sample = serializers.IntegerField()
    window_seconds = serializers.IntegerField()
    action = serializers.ChoiceField(choices=GUARD_ACTIONS)


class GuardVerdictOutput(serializers.Serializer[Any]):
    state = serializers.ChoiceField(choices=["insufficient", "healthy", "tripped"], allow_null=True)
    checked_at = serializers.DateTimeField(allow_null=True)
    explanation = serializers.CharField()


class ScheduleOutput(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["idle", "running", "paused", "completed"])
    stage = serializers.IntegerField(allow_null=True, help_text="Position of the current stage.")
    stage_started_at = serializers.DateTimeField(allow_null=True)


class FeatureOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    description = serializers.CharField()
    client_visible = serializers.BooleanField()
    killed = serializers.BooleanField()
    percentage_bp = serializers.IntegerField()
    allow = serializers.ListField(child=serializers.CharField())
    deny = serializers.ListField(child=serializers.CharField())
    platforms = serializers.ListField(child=serializers.CharField())
    datacenters = serializers.ListField(child=serializers.CharField())
    campuses = serializers.ListField(child=serializers.CharField())
    version_ranges = VersionRangeOutput(many=True)
    time_windows = TimeWindowOutput(many=True)
    stages = StageOutput(many=True)
    guard = GuardOutput(allow_null=True)
    guard_verdict = GuardVerdictOutput(help_text="The rollout guard's last reading.")
    revision = serializers.IntegerField()
    schedule = ScheduleOutput()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ChangeOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    feature_key = serializers.CharField()
    revision = serializers.IntegerField()
    action = serializers.ChoiceField(choices=ChangeAction.choices)
    actor_label = serializers.CharField(help_text="Who made the change.")
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()
    before = serializers.JSONField(allow_null=True, help_text="The whole state before.")
    after = serializers.JSONField(allow_null=True, help_text="The whole state after.")
    push_status = serializers.ChoiceField(
        choices=PushStatus.choices, help_text="The push of a client-visible change to devices."
    )
    pushed_users = serializers.IntegerField()


class RuleCoverageOutput(serializers.Serializer[Any]):
    rule = serializers.CharField()
    description = serializers.CharField()
    users = serializers.IntegerField(help_text="Signed-in users this rule covers on its own.")


class PreviewOutput(serializers.Serializer[Any]):
    population_users = serializers.IntegerField(help_text="Users signed in on some device.")
    population_devices = serializers.IntegerField()
    rules = RuleCoverageOutput(many=True)
    enabled_users = serializers.IntegerField()
    enabled_devices = serializers.IntegerField()
    current_enabled_users = serializers.IntegerField(allow_null=True)
    gained_users = serializers.IntegerField()
    lost_users = serializers.IntegerField()
