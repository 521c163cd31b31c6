"""Errors of the monitoring domain, each with a stable code (docs/api.md lists them)."""

from __future__ import annotations

from wechat_core.errors import InvalidInput


class InvalidAlertRule(InvalidInput):
    """An alert rule that could never be judged; `details.field` names the culprit."""

    code = "invalid_alert_rule"
