"""Typed values of gray release: who is asking, what a feature's rules are, the answer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from grayrelease.versions import VersionKey


class Reason(StrEnum):
    """Why a decision came out as it did, in the order the rules are tried.

    Stable strings: metrics and logs may be labelled by them."""

    UNKNOWN_FEATURE = "unknown_feature"
    KILLED = "killed"
    DENIED = "denied"
    ALLOWED = "allowed"
    OUTSIDE_TIME_WINDOW = "outside_time_window"
    PLATFORM = "platform_not_targeted"
    CLIENT_VERSION = "client_version_not_targeted"
    DATACENTER = "datacenter_not_targeted"
    CAMPUS = "campus_not_targeted"
    IN_ROLLOUT = "in_rollout"
    OUT_OF_ROLLOUT = "out_of_rollout"


@dataclass(frozen=True, slots=True)
class Decision:
    enabled: bool
    reason: Reason

    @property
    def variant(self) -> str:
        """ "on" or "off": the label for metrics of treated and control users."""
        return "on" if self.enabled else "off"

    def __bool__(self) -> bool:
        return self.enabled


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a feature is evaluated for. Build it once per request, connection or
    task (grayrelease.selectors.subject_for_*), then evaluate any number of
    features against it without touching the database.

    `platform`, `client_version` and `device_id` are None outside a device's
    context (a task acting for a user): platform and version rules then do not
    match. `wechat_id` is lower-cased.
    """

    user_id: int
    wechat_id: str | None = None
    platform: str | None = None
    client_version: str | None = None
    version_key: VersionKey | None = None
    datacenter: str | None = None
    campus: str | None = None
    device_id: int | None = None


@dataclass(frozen=True, slots=True)
class ClientFlag:
    """A client-visible feature as a device sees it. `revision` orders the
    values a device learns (login, hello, sync entries): keep the highest."""

    enabled: bool
    revision: int


@dataclass(frozen=True, slots=True)
class VersionRangeSpec:
    """Client versions from `min_version` (inclusive) up to `max_version`
    (exclusive); None leaves that side open."""

    min_version: str | None = None
    max_version: str | None = None


@dataclass(frozen=True, slots=True)
class TimeWindowSpec:
    """From `starts_at` (inclusive) until `ends_at` (exclusive); None leaves that side open."""

    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One step of a rollout schedule: this percentage for at least `soak_minutes`."""

    percentage_bp: int
    soak_minutes: int


class GuardAction(StrEnum):
    """What a tripped guard does to the rollout (grayrelease.services.guard)."""

    PAUSE = "pause"
    ROLLBACK = "rollback"


class GuardState(StrEnum):
    """A guard's verdict on the evidence it has."""

    INSUFFICIENT = "insufficient"  # a variant has fewer outcomes than the minimum sample
    HEALTHY = "healthy"
    TRIPPED = "tripped"


@dataclass(frozen=True, slots=True)
class GuardSpec:
    """A rollout guard: trip when the error rate of the treated users ("on")
    exceeds the control's ("off") by more than `margin_bp` basis points of
    error rate (100 = 1 percentage point), judged over the last `window_seconds`
    once each variant has `min_sample` outcomes; then pause the schedule, or
    roll the rollout back to 0 %."""

    margin_bp: int = 100
    min_sample: int = 100
    window_seconds: int = 600
    action: GuardAction = GuardAction.PAUSE


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Everything an operator sets on a feature. Empty targeting lists mean
    "anyone"; `allow` and `deny` hold user ids (digits) and WeChat IDs."""

    key: str
    description: str = ""
    client_visible: bool = False
    killed: bool = False
    percentage_bp: int = 0
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    datacenters: tuple[str, ...] = ()
    campuses: tuple[str, ...] = ()
    version_ranges: tuple[VersionRangeSpec, ...] = ()
    time_windows: tuple[TimeWindowSpec, ...] = ()
    stages: tuple[StageSpec, ...] = ()
    # None: not guarded (outcomes are not recorded, nothing watches the rollout).
    guard: GuardSpec | None = None


@dataclass(frozen=True, slots=True)
class RuleCoverage:
    """How many signed-in users one rule covers on its own."""

    rule: str
    description: str
    users: int


@dataclass(frozen=True, slots=True)
class FeaturePreview:
    """What a spec would do, counted over the users signed in on some device."""

    population_users: int
    population_devices: int
    rules: list[RuleCoverage] = field(default_factory=list)
    enabled_users: int = 0
    enabled_devices: int = 0
    # Against the saved feature (None when previewing a new one):
    current_enabled_users: int | None = None
    gained_users: int = 0
    lost_users: int = 0
