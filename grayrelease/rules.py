"""What makes a feature's rules valid, and their JSON form (the audit trail's).

`spec_clean` is the one validator: the services call it before every save, and
the admin's forms call it to put each error next to its field. It is pure: what
it must know of the world (data centres, campuses) is passed in, and what needs
the database (do the listed users exist?) stays in the services.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from django.conf import settings

from accounts.models import Platform
from accounts.validators import WECHAT_ID_PATTERN
from grayrelease.bucketing import BASIS_POINTS
from grayrelease.exceptions import InvalidRule
from grayrelease.types import (
    FeatureSpec,
    GuardAction,
    GuardSpec,
    StageSpec,
    TimeWindowSpec,
    VersionRangeSpec,
)
from grayrelease.versions import InvalidVersion, parse_version

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
DESCRIPTION_MAX = 500
SOAK_MINUTES_MAX = 30 * 24 * 60
# Fewer outcomes than this cannot tell a failing code path from bad luck.
GUARD_SAMPLE_MIN, GUARD_SAMPLE_MAX = 10, 10_000_000
GUARD_WINDOW_MAX = 24 * 3600
_USER_ID = re.compile(r"^[1-9][0-9]{0,17}$")
K = TypeVar("K")


def percent(basis_points: int) -> str:
    """100 → "1.00 %"."""
    return f"{basis_points / 100:.2f} %"


def _check_percentage(value: object, *, field: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRule("must be a whole number of basis points (100 = 1 %).", field=field)
    if not minimum <= value <= BASIS_POINTS:
        raise InvalidRule(
            f"must be between {percent(minimum)} and 100 % ({minimum}-{BASIS_POINTS} basis "
            f"points); got {value}.",
            field=field,
        )
    return value


def targets_clean(entries: Iterable[str], *, field: str) -> tuple[str, ...]:
    """User ids and WeChat IDs, trimmed, WeChat IDs lower-cased, duplicates dropped."""
    cleaned: dict[str, None] = {}
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if not (_USER_ID.fullmatch(entry) or WECHAT_ID_PATTERN.fullmatch(entry)):
            raise InvalidRule(f"{entry[:40]!r} is neither a user id nor a WeChat ID.", field=field)
        cleaned[entry.lower()] = None
    limit = settings.GRAYRELEASE_TARGET_LIST_MAX
    if len(cleaned) > limit:
        raise InvalidRule(f"at most {limit} users (got {len(cleaned)}).", field=field)
    return tuple(cleaned)


def _choices(
    values: Iterable[str], *, known: Iterable[str], field: str, what: str
) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(value.strip() for value in values if value.strip()))
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise InvalidRule(f"unknown {what}: {', '.join(unknown)}.", field=field)
    return chosen


def _bound(interval: tuple[Any, Any], show: Any) -> str:
    low, high = interval
    return f"[{show(low) if low is not None else '…'}, {show(high) if high is not None else '…'})"


def _first_overlap(intervals: list[tuple[K | None, K | None]]) -> tuple[int, int] | None:
    """Indexes of two overlapping half-open intervals, or None. With intervals
    sorted by their start, any overlap shows between two neighbours."""
    order = sorted(
        range(len(intervals)),
        key=lambda i: (intervals[i][0] is not None, intervals[i][0]),
    )
    for first, second in itertools.pairwise(order):
        end, start = intervals[first][1], intervals[second][0]
        if end is None or start is None or end > start:  # type: ignore[operator]
            return first, second
    return None


def version_ranges_clean(ranges: Iterable[VersionRangeSpec]) -> tuple[VersionRangeSpec, ...]:
    field = "version_ranges"
    cleaned = tuple(
        VersionRangeSpec(
            r.min_version.strip() or None if r.min_version else None,
            r.max_version.strip() or None if r.max_version else None,
        )
        for r in ranges
    )
    if len(cleaned) > settings.GRAYRELEASE_RANGES_MAX:
        raise InvalidRule(f"at most {settings.GRAYRELEASE_RANGES_MAX} ranges.", field=field)
    keys = []
    for number, item in enumerate(cleaned, start=1):
        if item.min_version is None and item.max_version is None:
            raise InvalidRule(f"range {number} has neither a minimum nor a maximum.", field=field)
        try:
            low = parse_version(item.min_version) if item.min_version else None
            high = parse_version(item.max_version) if item.max_version else None
        except InvalidVersion as error:
            raise InvalidRule(f"range {number}: {error}", field=field) from error
        if low is not None and high is not None and not low < high:
            raise InvalidRule(
                f"range {number} is empty: the minimum {item.min_version} (inclusive) must be "
                f"below the maximum {item.max_version} (exclusive).",
                field=field,
            )
        keys.append((low, high))
    overlap = _first_overlap(keys)
    if overlap is not None:
        a, b = (cleaned[i] for i in sorted(overlap))
        raise InvalidRule(
            f"the ranges {_bound((a.min_version, a.max_version), str)} and "
            f"{_bound((b.min_version, b.max_version), str)} overlap; merge them into one.",
            field=field,
        )
    return cleaned


def time_windows_clean(windows: Iterable[TimeWindowSpec]) -> tuple[TimeWindowSpec, ...]:
    field = "time_windows"
    cleaned = tuple(windows)
    if len(cleaned) > settings.GRAYRELEASE_RANGES_MAX:
        raise InvalidRule(f"at most {settings.GRAYRELEASE_RANGES_MAX} windows.", field=field)
    for number, window in enumerate(cleaned, start=1):
        if window.starts_at is None and window.ends_at is None:
            raise InvalidRule(f"window {number} has neither a start nor an end.", field=field)
        for moment in (window.starts_at, window.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise InvalidRule(f"window {number}: give times with a time zone.", field=field)
        if window.starts_at and window.ends_at and not window.starts_at < window.ends_at:
            raise InvalidRule(f"window {number} ends before it starts.", field=field)
    overlap = _first_overlap([(w.starts_at, w.ends_at) for w in cleaned])
    if overlap is not None:
        a, b = (cleaned[i] for i in sorted(overlap))
        show = dt.datetime.isoformat
        raise InvalidRule(
            f"the windows {_bound((a.starts_at, a.ends_at), show)} and "
            f"{_bound((b.starts_at, b.ends_at), show)} overlap; merge them into one.",
            field=field,
        )
    return cleaned


def stages_clean(stages: Iterable[StageSpec]) -> tuple[StageSpec, ...]:
    field = "stages"
    cleaned = tuple(stages)
    if len(cleaned) > settings.GRAYRELEASE_STAGES_MAX:
        raise InvalidRule(f"at most {settings.GRAYRELEASE_STAGES_MAX} stages.", field=field)
    previous = 0
    for number, stage in enumerate(cleaned, start=1):
        value = _check_percentage(stage.percentage_bp, field=field, minimum=1)
        if value <= previous:
            raise InvalidRule(
                f"stage {number} ({percent(value)}) must widen the rollout beyond the stage "
                f"before it ({percent(previous)}).",
                field=field,
            )
        soak = stage.soak_minutes
        if isinstance(soak, bool) or not isinstance(soak, int) or not 0 <= soak <= SOAK_MINUTES_MAX:
            raise InvalidRule(
                f"stage {number}: the soak time must be 0-{SOAK_MINUTES_MAX} minutes.", field=field
            )
        previous = value
    return cleaned


def _whole(value: object, *, low: int, high: int, field: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRule(
            f"{what} must be a whole number from {low} to {high}; got {value!r}.", field=field
        )
    return value


def guard_clean(guard: GuardSpec | None) -> GuardSpec | None:
    """The guard's settings, or InvalidRule naming the one that is wrong."""
    if guard is None:
        return None
    try:
        action = GuardAction(guard.action)
    except ValueError as error:
        choices = " or ".join(repr(a.value) for a in GuardAction)
        raise InvalidRule(
            f"the action must be {choices}; got {guard.action!r}.", field="guard_action"
        ) from error
    # The window must span a few flushes of every process's outcomes (monitoring).
    window_min = max(10, 2 * settings.MONITORING_FLUSH_SECONDS)
    return GuardSpec(
        margin_bp=_whole(
            guard.margin_bp,
            low=1,
            high=BASIS_POINTS,
            field="guard_margin_bp",
            what="the margin (basis points of error rate, 100 = 1 point)",
        ),
        min_sample=_whole(
            guard.min_sample,
            low=GUARD_SAMPLE_MIN,
            high=GUARD_SAMPLE_MAX,
            field="guard_min_sample",
            what="the minimum sample per variant",
        ),
        window_seconds=_whole(
            guard.window_seconds,
            low=window_min,
            high=GUARD_WINDOW_MAX,
            field="guard_window_seconds",
            what="the window in seconds",
        ),
        action=action,
    )


def spec_clean(
    spec: FeatureSpec, *, datacenters: Iterable[str], campuses: Mapping[str, str]
) -> FeatureSpec:
    """The spec with its lists normalised, or InvalidRule naming the first problem.
    `campuses` maps each known campus to its data centre."""
    if not KEY_PATTERN.fullmatch(spec.key):
        raise InvalidRule(
            "2-64 characters: lower-case letters, digits, '.', '_' and '-', starting with a "
            "letter (e.g. web.chat_search).",
            field="key",
        )
    if len(spec.description) > DESCRIPTION_MAX:
        raise InvalidRule(f"at most {DESCRIPTION_MAX} characters.", field="description")
    _check_percentage(spec.percentage_bp, field="percentage_bp")
    allow = targets_clean(spec.allow, field="allow")
    deny = targets_clean(spec.deny, field="deny")
    both = sorted(set(allow) & set(deny))
    if both:
        raise InvalidRule(f"{', '.join(both)} cannot be allowed and denied at once.", field="deny")
    chosen_dcs = _choices(
        spec.datacenters, known=datacenters, field="datacenters", what="data centres"
    )
    chosen_campuses = _choices(spec.campuses, known=campuses, field="campuses", what="campuses")
    if chosen_dcs:
        stray = [c for c in chosen_campuses if campuses[c] not in chosen_dcs]
        if stray:
            raise InvalidRule(
                f"{', '.join(stray)} lie outside the data centres chosen "
                f"({', '.join(chosen_dcs)}), so nobody could match; drop them or add their "
                "data centre.",
                field="campuses",
            )
    return replace(
        spec,
        description=spec.description.strip(),
        allow=allow,
        deny=deny,
        platforms=_choices(
            spec.platforms, known=Platform.values, field="platforms", what="platforms"
        ),
        datacenters=chosen_dcs,
        campuses=chosen_campuses,
        version_ranges=version_ranges_clean(spec.version_ranges),
        time_windows=time_windows_clean(spec.time_windows),
        stages=stages_clean(spec.stages),
        guard=guard_clean(spec.guard),
    )


def split_targets(targets: Iterable[str]) -> tuple[set[int], set[str]]:
    """(user ids, lower-cased WeChat IDs) of cleaned allow/deny entries."""
    ids, wechat_ids = set(), set()
    for entry in targets:
        if entry.isdigit():
            ids.add(int(entry))
        else:
            wechat_ids.add(entry.lower())
    return ids, wechat_ids


# --- JSON, for the audit trail and for pushes computed from it ---------------------------


def _moment(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def spec_to_json(spec: FeatureSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "description": spec.description,
        "client_visible": spec.client_visible,
        "killed": spec.killed,
        "percentage_bp": spec.percentage_bp,
        "allow": list(spec.allow),
        "deny": list(spec.deny),
        "platforms": list(spec.platforms),
        "datacenters": list(spec.datacenters),
        "campuses": list(spec.campuses),
        "version_ranges": [
            {"min_version": r.min_version, "max_version": r.max_version}
            for r in spec.version_ranges
        ],
        "time_windows": [
            {
                "starts_at": w.starts_at.isoformat() if w.starts_at else None,
                "ends_at": w.ends_at.isoformat() if w.ends_at else None,
            }
            for w in spec.time_windows
        ],
        "stages": [
            {"percentage_bp": s.percentage_bp, "soak_minutes": s.soak_minutes} for s in spec.stages
        ],
        "guard": _guard_to_json(spec.guard),
    }


def _guard_to_json(guard: GuardSpec | None) -> dict[str, Any] | None:
    if guard is None:
        return None
    return {
        "margin_bp": guard.margin_bp,
        "min_sample": guard.min_sample,
        "window_seconds": guard.window_seconds,
        "action": str(guard.action),
    }


def _guard_from_json(data: Mapping[str, Any] | None) -> GuardSpec | None:
    if data is None:  # also every record from before guards existed
        return None
    return GuardSpec(
        margin_bp=int(data["margin_bp"]),
        min_sample=int(data["min_sample"]),
        window_seconds=int(data["window_seconds"]),
        action=GuardAction(data["action"]),
    )


def spec_from_json(data: Mapping[str, Any]) -> FeatureSpec:
    return FeatureSpec(
        key=data["key"],
        description=data.get("description", ""),
        client_visible=bool(data.get("client_visible", False)),
        killed=bool(data.get("killed", False)),
        percentage_bp=int(data.get("percentage_bp", 0)),
        allow=tuple(data.get("allow", ())),
        deny=tuple(data.get("deny", ())),
        platforms=tuple(data.get("platforms", ())),
        datacenters=tuple(data.get("datacenters", ())),
        campuses=tuple(data.get("campuses", ())),
        version_ranges=tuple(
            VersionRangeSpec(r.get("min_version"), r.get("max_version"))
            for r in data.get("version_ranges", ())
        ),
        time_windows=tuple(
            TimeWindowSpec(_moment(w.get("starts_at")), _moment(w.get("ends_at")))
            for w in data.get("time_windows", ())
        ),
        stages=tuple(
            StageSpec(int(s["percentage_bp"]), int(s["soak_minutes"]))
            for s in data.get("stages", ())
        ),
        guard=_guard_from_json(data.get("guard")),
    )
