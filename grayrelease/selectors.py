"""Reads of gray release: subjects to evaluate for, a device's flags, features and
their audit trail, previews of what a spec would cover, and the outcomes a
rollout guard judges."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db.models import QuerySet

from accounts import selectors as accounts
from accounts.models import Device, User
from accounts.types import DeviceProfile, VerifiedTicket
from grayrelease.compiled import (
    CompiledFeature,
    campus_matches,
    compile_feature,
    datacenter_matches,
    decide,
    in_percentage,
    in_time_windows,
    is_allowed,
    is_denied,
    platform_matches,
    version_matches,
)
from grayrelease.evaluation import FEATURE_OUTCOMES, client_flags, compile_state
from grayrelease.exceptions import FeatureNotFound
from grayrelease.guard import VariantSample
from grayrelease.models import Feature, FeatureChange, new_salt
from grayrelease.rules import percent
from grayrelease.specs import feature_spec_of, feature_state
from grayrelease.types import (
    ClientFlag,
    FeaturePreview,
    FeatureSpec,
    RuleCoverage,
    Subject,
)
from grayrelease.versions import parse_client_version
from monitoring.selectors import (
    Query,
    WindowValue,
    resolution_for,
    settled_until,
    window_values_by,
)
from wechat_core.selectors import campus_list

# --- Subjects ------------------------------------------------------------------------


def subject_of(profile: DeviceProfile) -> Subject:
    return Subject(
        user_id=profile.user_id,
        wechat_id=profile.wechat_id.lower() if profile.wechat_id else None,
        platform=profile.platform,
        client_version=profile.client_version,
        version_key=parse_client_version(profile.client_version),
        datacenter=profile.home_datacenter,
        campus=profile.home_campus,
        device_id=profile.device_id,
    )


def subject_for_ticket(*, ticket: VerifiedTicket, user_id: int) -> Subject:
    """The user on the device of this ticket (views and consumers); one query."""
    return subject_of(accounts.device_profile_get(ticket=ticket, user_id=user_id))


def subject_for_user(*, user_id: int) -> Subject:
    """The user outside any device (tasks and commands): platform and version
    rules do not match them."""
    return subject_of(accounts.user_profile_get(user_id=user_id))


def subject_at_login(*, user: User, device: Device) -> Subject:
    """The user on the device that just logged in (no query: both are at hand)."""
    return subject_of(
        DeviceProfile(
            user_id=user.pk,
            wechat_id=user.wechat_id,
            home_datacenter=user.home_datacenter_id,
            home_campus=user.home_campus_id,
            device_id=device.pk,
            platform=device.platform,
            client_version=device.client_version,
        )
    )


def signed_in_devices_of(*, user_id: int) -> list[Subject]:
    """The user on each device they are signed in on (operators' diagnosis)."""
    profiles = accounts.device_profiles_signed_in(after_user_id=user_id - 1, users=1)
    return [subject_of(p) for p in profiles if p.user_id == user_id]


def login_flags(*, user: User, device: Device) -> dict[str, ClientFlag]:
    """The flags a device receives in its login answer."""
    return client_flags(subject=subject_at_login(user=user, device=device))


def device_flags(*, ticket: VerifiedTicket, user_id: int) -> dict[str, ClientFlag]:
    """The client-visible features as the ticket's device sees them."""
    return client_flags(subject=subject_for_ticket(ticket=ticket, user_id=user_id))


# --- Features and their audit trail ------------------------------------------------------


def feature_list() -> QuerySet[Feature]:
    return Feature.objects.prefetch_related("version_ranges", "time_windows", "stages")


def feature_get(*, key: str) -> Feature:
    feature = feature_list().filter(key=key).first()
    if feature is None:
        raise FeatureNotFound(f"No feature {key!r}.")
    return feature


def feature_changes(*, key: str) -> QuerySet[FeatureChange]:
    """The audit trail of a feature (deleted ones included), newest first."""
    return FeatureChange.objects.filter(feature_key=key).order_by("-created_at", "-id")


@dataclass(frozen=True, slots=True)
class Topology:
    datacenters: tuple[str, ...]
    campuses: dict[str, str]  # campus → its data centre


def topology_known() -> Topology:
    campuses = {campus.code: campus.datacenter for campus in campus_list()}
    return Topology(datacenters=tuple(sorted(set(campuses.values()))), campuses=campuses)


# --- Previews ---------------------------------------------------------------------------


def signed_in_subjects() -> Iterator[list[Subject]]:
    """Every device holding a live ticket, as subjects, a batch of users at a time."""
    after = 0
    while True:
        profiles = accounts.device_profiles_signed_in(
            after_user_id=after, users=settings.GRAYRELEASE_PUSH_BATCH
        )
        if not profiles:
            return
        yield [subject_of(profile) for profile in profiles]
        after = profiles[-1].user_id


Rule = tuple[str, str, Callable[[Subject], bool]]


def _rules(spec: FeatureSpec, feature: CompiledFeature, now: float) -> list[Rule]:
    """(rule, description, test of a subject) for each rule the spec sets."""
    rules: list[Rule] = []
    if spec.killed:
        rules.append(("kill_switch", "Kill switch on: off for everyone", lambda s: False))
    if spec.deny:
        rules.append(("deny", f"Denied: {', '.join(spec.deny)}", lambda s: is_denied(feature, s)))
    if spec.allow:
        rules.append(
            ("allow", f"Allowed: {', '.join(spec.allow)}", lambda s: is_allowed(feature, s))
        )
    if spec.time_windows:
        state = "open now" if in_time_windows(feature, now) else "closed now"
        rules.append(("time_windows", f"Time windows ({state})", lambda s: state == "open now"))
    checks = [
        ("platforms", spec.platforms, platform_matches),
        ("datacenters", spec.datacenters, datacenter_matches),
        ("campuses", spec.campuses, campus_matches),
    ]
    for rule, values, matches in checks:
        if values:
            rules.append(
                (
                    rule,
                    f"{rule.capitalize()}: {', '.join(values)}",
                    partial(matches, feature),
                )
            )
    if spec.version_ranges:
        shown = ", ".join(
            f"[{r.min_version or '…'}, {r.max_version or '…'})" for r in spec.version_ranges
        )
        rules.append(
            ("version_ranges", f"Client versions {shown}", lambda s: version_matches(feature, s))
        )
    rules.append(
        (
            "percentage",
            f"Percentage {percent(spec.percentage_bp)}",
            lambda s: in_percentage(feature, s),
        )
    )
    return rules


def feature_preview(*, spec: FeatureSpec) -> FeaturePreview:
    """How many signed-in users each rule of a cleaned spec covers on its own, how
    many would get the feature, and how that differs from the saved feature of
    the same key.

    Counted exactly over every device holding a live ticket (a user counts once,
    when at least one of their devices matches). A new feature gets its random
    salt when created, so its percentage count is a statistical estimate."""
    saved = Feature.objects.filter(key=spec.key).first()
    current = compile_state(feature_state(saved)) if saved is not None else None
    salt = saved.salt if saved is not None else new_salt()
    proposed = compile_feature(spec, salt=salt, revision=0)
    now = time.time()
    rules = _rules(spec, proposed, now)
    covered = {rule: 0 for rule, _, _ in rules}
    users = devices = enabled_users = enabled_devices = current_users = gained = lost = 0
    for batch in signed_in_subjects():
        by_user: dict[int, list[Subject]] = {}
        for subject in batch:
            by_user.setdefault(subject.user_id, []).append(subject)
        for subjects in by_user.values():
            users += 1
            devices += len(subjects)
            for rule, _, test in rules:
                covered[rule] += any(test(s) for s in subjects)
            on = [decide(proposed, s, now).enabled for s in subjects]
            enabled_devices += sum(on)
            after = any(on)
            before = current is not None and any(decide(current, s, now).enabled for s in subjects)
            enabled_users += after
            current_users += before
            gained += after and not before
            lost += before and not after
    return FeaturePreview(
        population_users=users,
        population_devices=devices,
        rules=[RuleCoverage(rule, text, covered[rule]) for rule, text, _ in rules],
        enabled_users=enabled_users,
        enabled_devices=enabled_devices,
        current_enabled_users=current_users if current is not None else None,
        gained_users=gained,
        lost_users=lost,
    )


def feature_spec(*, feature: Feature) -> FeatureSpec:
    """The spec of a feature read with feature_get (stages included)."""
    return feature_spec_of(feature, with_stages=True)


# --- Rollout guards -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GuardSamples:
    since: dt.datetime
    until: dt.datetime
    treated: VariantSample
    control: VariantSample


def _sample(value: WindowValue | None) -> VariantSample:
    if value is None:  # no outcome of this variant in the window
        return VariantSample(requests=0, errors=0)
    return VariantSample(
        requests=round(value.volume), errors=round((value.value or 0.0) * value.volume)
    )


def guard_samples(
    *, key: str, window_seconds: int, not_before: dt.datetime | None, now: dt.datetime
) -> GuardSamples:
    """Each variant's outcomes of `key` in the last `window_seconds` of settled
    history (every process has flushed them), but none from before `not_before`:
    a history bucket counts only if it starts at or after it."""
    until = settled_until(now)
    since = until - timedelta(seconds=window_seconds)
    if not_before is not None and not_before > since:
        resolution = resolution_for(not_before, now)
        since = dt.datetime.fromtimestamp(
            -(-not_before.timestamp() // resolution) * resolution, tz=dt.UTC
        )
    if since >= until:
        empty = VariantSample(requests=0, errors=0)
        return GuardSamples(since, until, empty, empty)
    query = Query(
        family=FEATURE_OUTCOMES.name,
        aggregation="ratio",
        filters={"feature": key},
        numerator={"outcome": "error"},
    )
    # Both variants from one read of the history.
    by_variant = window_values_by(query=query, label="variant", since=since, until=until)
    return GuardSamples(
        since=since,
        until=until,
        treated=_sample(by_variant.get("on")),
        control=_sample(by_variant.get("off")),
    )
