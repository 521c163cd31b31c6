"""Between feature rows and specs: read a feature's spec, its whole state as the
audit trail records it, and what a recorded change moved."""

from __future__ import annotations

import json
from typing import Any

from grayrelease.models import Feature
from grayrelease.rules import percent, spec_to_json
from grayrelease.types import (
    FeatureSpec,
    GuardAction,
    GuardSpec,
    StageSpec,
    TimeWindowSpec,
    VersionRangeSpec,
)


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
        guard=guard_spec_of(feature),
    )


def guard_spec_of(feature: Feature) -> GuardSpec | None:
    if not feature.guarded:
        return None
    return GuardSpec(
        margin_bp=feature.guard_margin_bp,
        min_sample=feature.guard_min_sample,
        window_seconds=feature.guard_window_seconds,
        action=GuardAction(feature.guard_action),
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


# The schedule operators start from: 1 % → 5 % → 20 % → 50 % → 100 %.
STANDARD_STAGES = tuple(
    StageSpec(bp, minutes)
    for bp, minutes in ((100, 60), (500, 60), (2000, 120), (5000, 240), (10_000, 0))
)


def change_summary(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """What a change moved, one line per field ("percentage_bp: 100 → 500")."""
    if before is None or after is None:
        return ["created"] if before is None else ["deleted"]
    lines = []
    for part in ("spec", "schedule"):
        old, new = before.get(part, {}), after.get(part, {})
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name) and name != "stage_started_at":
                shown = [json.dumps(v, ensure_ascii=False) for v in (old.get(name), new.get(name))]
                if name == "percentage_bp":
                    shown = [percent(int(old.get(name) or 0)), percent(int(new.get(name) or 0))]
                label = name if part == "spec" else f"schedule {name}"
                lines.append(f"{label}: {shown[0]} → {shown[1]}")
    return lines or ["rules unchanged"]
