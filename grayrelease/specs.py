"""Between feature rows and specs: read a feature's spec, and its whole state as
the audit trail records it."""

from __future__ import annotations

from typing import Any

from grayrelease.models import Feature
from grayrelease.rules import spec_to_json
from grayrelease.types import FeatureSpec, StageSpec, TimeWindowSpec, VersionRangeSpec


def feature_spec_of(feature: Feature, *, with_stages: bool = False) -> FeatureSpec:
    """The spec of a saved feature (prefetch version_ranges, time_windows and
    stages when reading many)."""
    stages: tuple[StageSpec, ...] = ()
    if with_stages:
        stages = tuple(StageSpec(s.percentage_bp, s.soak_minutes) for s in feature.stages.all())
    return FeatureSpec(
        key=feature.key,
        description=feature.description,
        client_visible=feature.client_visible,
        killed=feature.killed,
        percentage_bp=feature.percentage_bp,
        allow=tuple(feature.allow),
        deny=tuple(feature.deny),
        platforms=tuple(feature.platforms),
        datacenters=tuple(feature.datacenters),
        campuses=tuple(feature.campuses),
        version_ranges=tuple(
            VersionRangeSpec(r.min_version or None, r.max_version or None)
            for r in feature.version_ranges.all()
        ),
        time_windows=tuple(
            TimeWindowSpec(w.starts_at, w.ends_at) for w in feature.time_windows.all()
        ),
        stages=stages,
    )


def feature_state(feature: Feature) -> dict[str, Any]:
    """Everything about a feature that a change can move, as JSON."""
    return {
        "spec": spec_to_json(feature_spec_of(feature, with_stages=True)),
        "revision": feature.revision,
        "salt": feature.salt,
        "schedule": {
            "status": feature.schedule_status,
            "stage": feature.stage_position,
            "stage_started_at": (
                feature.stage_started_at.isoformat() if feature.stage_started_at else None
            ),
        },
    }
