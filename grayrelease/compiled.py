"""Features compiled for evaluation, and the decision itself.

A `CompiledFeature` is a spec turned into what a check needs and nothing more:
frozensets, parsed version keys, epoch seconds, the bucketing prefix. `decide`
tries the rules in a fixed order and answers with the first that settles it:

    kill switch → deny list → allow list → time windows → platforms →
    client versions → data centres → campuses → percentage

So the kill switch wins over everything, a denied user never gets the feature,
an allowed one (a tester) gets it whatever the targeting and percentage say,
and the percentage applies to the users the targeting selects.

Pure and DB-free; the per-process table of compiled features lives in
grayrelease.evaluation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from grayrelease.bucketing import BASIS_POINTS, bucket_of, salt_seed
from grayrelease.rules import split_targets
from grayrelease.types import Decision, FeatureSpec, Reason, Subject
from grayrelease.versions import VersionKey, parse_version

ON = {reason: Decision(True, reason) for reason in Reason}
OFF = {reason: Decision(False, reason) for reason in Reason}
UNKNOWN = OFF[Reason.UNKNOWN_FEATURE]
_KILLED, _DENIED, _ALLOWED = OFF[Reason.KILLED], OFF[Reason.DENIED], ON[Reason.ALLOWED]
_OUTSIDE, _PLATFORM = OFF[Reason.OUTSIDE_TIME_WINDOW], OFF[Reason.PLATFORM]
_VERSION, _DATACENTER = OFF[Reason.CLIENT_VERSION], OFF[Reason.DATACENTER]
_CAMPUS, _IN, _OUT = OFF[Reason.CAMPUS], ON[Reason.IN_ROLLOUT], OFF[Reason.OUT_OF_ROLLOUT]


@dataclass(frozen=True, slots=True)
class CompiledFeature:
    key: str
    revision: int
    client_visible: bool
    # Whether code paths behind it record their outcomes (grayrelease.evaluation).
    guarded: bool
    killed: bool
    percentage_bp: int
    seed: int
    allow_ids: frozenset[int]
    allow_wechat_ids: frozenset[str]
    deny_ids: frozenset[int]
    deny_wechat_ids: frozenset[str]
    # None: no restriction.
    platforms: frozenset[str] | None
    datacenters: frozenset[str] | None
    campuses: frozenset[str] | None
    # Empty: no restriction.
    versions: tuple[tuple[VersionKey | None, VersionKey | None], ...]
    windows: tuple[tuple[float | None, float | None], ...]


def _set(values: tuple[str, ...]) -> frozenset[str] | None:
    return frozenset(values) if values else None


def compile_feature(spec: FeatureSpec, *, salt: str, revision: int) -> CompiledFeature:
    """Compile a cleaned spec (grayrelease.rules.spec_clean)."""
    allow_ids, allow_wechat_ids = split_targets(spec.allow)
    deny_ids, deny_wechat_ids = split_targets(spec.deny)
    return CompiledFeature(
        key=spec.key,
        revision=revision,
        client_visible=spec.client_visible,
        guarded=spec.guard is not None,
        killed=spec.killed,
        percentage_bp=spec.percentage_bp,
        seed=salt_seed(salt),
        allow_ids=frozenset(allow_ids),
        allow_wechat_ids=frozenset(allow_wechat_ids),
        deny_ids=frozenset(deny_ids),
        deny_wechat_ids=frozenset(deny_wechat_ids),
        platforms=_set(spec.platforms),
        datacenters=_set(spec.datacenters),
        campuses=_set(spec.campuses),
        versions=tuple(
            (
                parse_version(r.min_version) if r.min_version else None,
                parse_version(r.max_version) if r.max_version else None,
            )
            for r in spec.version_ranges
        ),
        windows=tuple(
            (
                w.starts_at.timestamp() if w.starts_at else None,
                w.ends_at.timestamp() if w.ends_at else None,
            )
            for w in spec.time_windows
        ),
    )


# --- Each rule on its own (decide inlines them; previews count them one by one) --------


# Plain loops rather than any(<generator>): a generator costs more than the tests.


def in_time_windows(feature: CompiledFeature, now: float) -> bool:
    if not feature.windows:
        return True
    for start, end in feature.windows:
        if (start is None or start <= now) and (end is None or now < end):
            return True
    return False


def platform_matches(feature: CompiledFeature, subject: Subject) -> bool:
    return feature.platforms is None or subject.platform in feature.platforms


def version_matches(feature: CompiledFeature, subject: Subject) -> bool:
    if not feature.versions:
        return True
    key = subject.version_key
    if key is None:
        return False
    for low, high in feature.versions:
        if (low is None or key >= low) and (high is None or key < high):
            return True
    return False


def datacenter_matches(feature: CompiledFeature, subject: Subject) -> bool:
    return feature.datacenters is None or subject.datacenter in feature.datacenters


def campus_matches(feature: CompiledFeature, subject: Subject) -> bool:
    return feature.campuses is None or subject.campus in feature.campuses


def is_denied(feature: CompiledFeature, subject: Subject) -> bool:
    return subject.user_id in feature.deny_ids or (
        subject.wechat_id is not None and subject.wechat_id in feature.deny_wechat_ids
    )


def is_allowed(feature: CompiledFeature, subject: Subject) -> bool:
    return subject.user_id in feature.allow_ids or (
        subject.wechat_id is not None and subject.wechat_id in feature.allow_wechat_ids
    )


def in_percentage(feature: CompiledFeature, subject: Subject) -> bool:
    percentage = feature.percentage_bp
    if percentage >= BASIS_POINTS:
        return True
    if percentage <= 0:
        return False
    return bucket_of(feature.seed, subject.user_id) < percentage


def decide(feature: CompiledFeature, subject: Subject, now: float | None = None) -> Decision:
    """The decision for `subject` at `now` (epoch seconds; the clock when None)."""
    if feature.killed:
        return _KILLED
    user_id, wechat_id = subject.user_id, subject.wechat_id
    if user_id in feature.deny_ids or (
        wechat_id is not None and wechat_id in feature.deny_wechat_ids
    ):
        return _DENIED
    if user_id in feature.allow_ids or (
        wechat_id is not None and wechat_id in feature.allow_wechat_ids
    ):
        return _ALLOWED
    if feature.windows and not in_time_windows(feature, time.time() if now is None else now):
        return _OUTSIDE
    # The rule functions above, inlined: this is the hot path.
    if feature.platforms is not None and subject.platform not in feature.platforms:
        return _PLATFORM
    if feature.versions and not version_matches(feature, subject):
        return _VERSION
    if feature.datacenters is not None and subject.datacenter not in feature.datacenters:
        return _DATACENTER
    if feature.campuses is not None and subject.campus not in feature.campuses:
        return _CAMPUS
    percentage = feature.percentage_bp
    if percentage >= BASIS_POINTS:
        return _IN
    if percentage <= 0:
        return _OUT
    return _IN if bucket_of(feature.seed, subject.user_id) < percentage else _OUT
