"""A drill whose process died mid-block left its campus blocked: the next drill
unblocks it (only if that drill flipped the switch last) and reports it aborted."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from drills.services import drill_run
from monitoring.models import DrDrill, DrillOutcome
from wechat_core.models import Campus, DataCenter
from wechat_core.selectors import campus_is_blocked
from wechat_core.services import campus_save, campus_set_blocked

pytestmark = pytest.mark.django_db


def test_next_drill__unblocks_what_an_interrupted_drill_left_blocked(settings: Any) -> None:
    shanghai, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
    # (one campus with endpoints: the next drill itself is skipped, nothing to move)
    campus_save(
        campus=Campus(code="sh-b", datacenter=shanghai, name="sh-b", endpoints="ws://x/ws/sync"),
        actor=None,
    )
    # given: drill N blocked sh-b an hour ago and never finished
    stale = DrDrill.objects.create(campus="sh-b", trigger="beat", planned_block_seconds=180)
    DrDrill.objects.filter(pk=stale.pk).update(started_at=stale.started_at - dt.timedelta(hours=1))
    campus_set_blocked(code="sh-b", blocked=True, actor=None, reason=f"DR drill {stale.pk}")
    # when: the next drill starts
    drill_run(trigger="beat", block_seconds=5.0)
    # then: sh-b is open again, and the stale drill is reported aborted
    assert not campus_is_blocked(code="sh-b")
    stale.refresh_from_db()
    assert stale.outcome == DrillOutcome.ABORTED
    assert "interrupted" in stale.explanation


def test_next_drill__campus_blocked_by_an_operator_since__stays_blocked() -> None:
    shanghai, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
    campus_save(campus=Campus(code="sh-b", datacenter=shanghai, name="sh-b"), actor=None)
    stale = DrDrill.objects.create(campus="sh-b", trigger="beat", planned_block_seconds=180)
    DrDrill.objects.filter(pk=stale.pk).update(started_at=stale.started_at - dt.timedelta(hours=1))
    campus_set_blocked(code="sh-b", blocked=True, actor=None, reason=f"DR drill {stale.pk}")
    campus_set_blocked(code="sh-b", blocked=False, actor=None, reason="ops")
    campus_set_blocked(code="sh-b", blocked=True, actor=None, reason="fibre cut")
    drill = drill_run(trigger="beat", block_seconds=5.0)
    assert campus_is_blocked(code="sh-b")
    assert drill.outcome == DrillOutcome.SKIPPED
