"""Evaluation: the one call every view, consumer, task and command makes.

    subject = subject_for_ticket(ticket=ticket, user_id=ticket.user_id)  # once
    decision = evaluate(key="web.chat_search", subject=subject)          # any number
    if decision.enabled: ...          # decision.variant "on"/"off", decision.reason

Each process keeps every feature compiled in memory (wechat_core.sharedstate):
a check costs no database or cache call, only a version-stamp read at most
every SHARED_STATE_POLL_SECONDS, so a change saved anywhere is in effect in
every ASGI process and Celery worker within a second. bench/flag_checks.py
measures a check (docs/performance.md).

Guarded features (grayrelease.services.guard) also count how the code path the
decision chose went, per variant, in `grayrelease_requests_total`:

    decision = evaluate(key="messaging.spam_filter_candidate", subject=subject)
    with feature_outcome(key="messaging.spam_filter_candidate", decision=decision) as outcome:
        ...                            # an exception counts as an error
        if degraded: outcome.fail()    # so does a failure handled in place
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

from grayrelease.compiled import UNKNOWN, CompiledFeature, compile_feature, decide
from grayrelease.models import Feature
from grayrelease.rules import spec_from_json
from grayrelease.specs import feature_spec_of
from grayrelease.types import ClientFlag, Decision, Reason, Subject
from wechat_core.errors import ServiceError
from wechat_core.metrics import counter
from wechat_core.sharedstate import SharedSnapshot

FEATURE_OUTCOMES = counter(
    "grayrelease_requests_total",
    "Outcomes of code paths behind guarded features, by variant: on (treated: in the "
    "rollout) or off (control: out of it), and outcome (ok or error).",
    ["feature", "variant", "outcome"],
    process_labels=True,
)
# Only the users the percentage decided make a fair comparison: their variant is
# down to the hash alone. Testers on the allow list, untargeted platforms and the
# kill switch would bias it, so their outcomes are not counted.
_VARIANTS = {Reason.IN_ROLLOUT: "on", Reason.OUT_OF_ROLLOUT: "off"}


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


def outcome_record(*, key: str, decision: Decision, ok: bool) -> None:
    """Count one outcome of the code path `decision` chose. Nothing unless the
    feature is guarded (so only guarded features become label values) and the
    percentage made the decision."""
    variant = _VARIANTS.get(decision.reason)
    if variant is None:
        return
    feature = features_snapshot.get().features.get(key)
    if feature is not None and feature.guarded:
        FEATURE_OUTCOMES.inc(key, variant, "ok" if ok else "error")


class OutcomeScope:
    """Records one outcome when the block ends: an error if it raised anything but
    a ServiceError (a refusal the caller is told about is the code path working)
    or called `fail()`, ok otherwise. A class, not a generator: it costs less."""

    __slots__ = ("decision", "failed", "key")

    def __init__(self, key: str, decision: Decision) -> None:
        self.key, self.decision, self.failed = key, decision, False

    def fail(self) -> None:
        self.failed = True

    def __enter__(self) -> OutcomeScope:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        failed = self.failed or (error is not None and not isinstance(error, ServiceError))
        outcome_record(key=self.key, decision=self.decision, ok=not failed)


def feature_outcome(*, key: str, decision: Decision) -> OutcomeScope:
    """`with feature_outcome(key=..., decision=...) as outcome:` around the code path
    the decision chose (either variant's)."""
    return OutcomeScope(key, decision)
