"""Errors of gray release, each with a stable code (docs/api.md lists them)."""

from __future__ import annotations

from typing import Any

from wechat_core.errors import Conflict, InvalidInput, NotFound


class InvalidRule(InvalidInput):
    """A rule that cannot be saved; `field` names the offending field."""

    code = "invalid_rule"
    default_message = "The feature's rules are not valid."

    def __init__(self, message: str, *, field: str, details: dict[str, Any] | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}", details={"field": field, **(details or {})})
        self.reason = message


class FeatureNotFound(NotFound):
    code = "feature_not_found"
    default_message = "No such feature."


class FeatureExists(Conflict):
    code = "feature_exists"
    default_message = "A feature with this key exists already."


class FeatureChanged(Conflict):
    """Someone saved the feature since the caller read it (optimistic concurrency)."""

    code = "feature_changed"
    default_message = "The feature changed since you read it; reload and apply your change again."


class ScheduleRefused(Conflict):
    code = "schedule_refused"
    default_message = "The rollout schedule cannot do that now."
