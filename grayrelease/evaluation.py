"""Evaluation: the one call every view, consumer, task and command makes.

    subject = subject_for_ticket(ticket=ticket, user_id=ticket.user_id)  # once
    decision = evaluate(key="web.chat_search", subject=subject)          # any number
    if decision.enabled: ...          # decision.variant "on"/"off", decision.reason

Each process keeps every feature compiled in memory (wechat_core.sharedstate):
a check costs no database or cache call, only a version-stamp read at most
every SHARED_STATE_POLL_SECONDS, so a change saved anywhere is in effect in
every ASGI process and Celery worker within a second. bench/flag_checks.py
measures a check (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grayrelease.compiled import UNKNOWN, CompiledFeature, compile_feature, decide
from grayrelease.models import Feature
from grayrelease.rules import spec_from_json
from grayrelease.specs import feature_spec_of
from grayrelease.types import ClientFlag, Decision, Subject
from wechat_core.sharedstate import SharedSnapshot


@dataclass(frozen=True, slots=True)
class CompiledTable:
    features: dict[str, CompiledFeature]
    client_visible: tuple[CompiledFeature, ...]


def _load() -> CompiledTable:
    features = {
        feature.key: compile_feature(
            feature_spec_of(feature), salt=feature.salt, revision=feature.revision
        )
        for feature in Feature.objects.prefetch_related("version_ranges", "time_windows")
    }
    visible = tuple(f for f in features.values() if f.client_visible)
    return CompiledTable(features=features, client_visible=visible)


features_snapshot: SharedSnapshot[CompiledTable] = SharedSnapshot("grayrelease", _load)


def evaluate(*, key: str, subject: Subject, now: float | None = None) -> Decision:
    """Whether `key` is on for `subject` (at `now`, epoch seconds; the clock when
    None), and why. An unknown key is off (reason unknown_feature)."""
    feature = features_snapshot.get().features.get(key)
    if feature is None:
        return UNKNOWN
    return decide(feature, subject, now)


def is_enabled(*, key: str, subject: Subject) -> bool:
    return evaluate(key=key, subject=subject).enabled


def client_flags(*, subject: Subject, now: float | None = None) -> dict[str, ClientFlag]:
    """Every client-visible feature as this subject's device should see it."""
    return {
        feature.key: ClientFlag(decide(feature, subject, now).enabled, feature.revision)
        for feature in features_snapshot.get().client_visible
    }


def compile_state(state: dict[str, Any] | None) -> CompiledFeature | None:
    """A feature as an audit record describes it (grayrelease.specs.feature_state)."""
    if state is None:
        return None
    spec = spec_from_json(state["spec"])
    return compile_feature(spec, salt=str(state["salt"]), revision=int(state["revision"]))
