"""The DR drill (seed 000, 容灾拨测): one campus blocked for a while as synthetic
Python clients chat over three live campuses. When the other campuses take the
moved clients, failures do not rise and the drill passes; when they cannot
(their endpoint is dead and nobody noticed: what drills are for), the drill
sees failures rise, unblocks the campus at once, and alerts operators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.processes import ServerProcess, free_port
from drills.services import DRILL_RULE, drill_run
from monitoring.models import Alert, AlertState, DrDrill, DrillOutcome, NotificationChannel
from tests.support.campuses import campuses_running
from wechat_core.models import Campus, CampusBlockEvent
from wechat_core.selectors import campus_is_blocked
from wechat_core.services import campus_save

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def drill_settings(settings: Any) -> Any:
    settings.DR_DRILL_PAIRS = 2
    settings.DR_DRILL_BASELINE_SECONDS = 2.0
    settings.DR_DRILL_SEND_INTERVAL_SECONDS = 0.25
    settings.DR_DRILL_ABORT_MIN_FAILURES = 3
    settings.DR_DRILL_MAX_FAILURE_RATE_DELTA = 0.01
    return settings


@pytest.fixture
def campuses(
    live_env: dict[str, str], live_log_dir: Path, celery_worker: ServerProcess
) -> Iterator[dict[str, ServerProcess]]:
    with campuses_running(env=live_env, log_dir=live_log_dir) as servers:
        yield servers


def test_drill__other_campuses_take_the_moved_clients__passes_and_unblocks(
    campuses: dict[str, ServerProcess], drill_settings: Any
) -> None:
    drill_settings.DR_DRILL_SEND_TIMEOUT_SECONDS = 15.0
    # when: sh-b is drilled for 4 s
    drill = drill_run(campus="sh-b", trigger="command", block_seconds=4.0)
    # then: it passed, with traffic before and during, and sh-b's links moved
    assert drill.outcome == DrillOutcome.PASSED, drill.explanation
    assert drill.before_sent > 0
    assert drill.during_sent > 0
    assert drill.before_failed == drill.during_failed == 0
    assert drill.moved_clients >= 1
    assert drill.reconnect_max_ms is not None
    # and: sh-b is open again, and the switch's audit trail names the drill
    assert not campus_is_blocked(code="sh-b")
    events = list(CampusBlockEvent.objects.filter(campus_id="sh-b").order_by("created_at"))
    assert [(e.blocked, e.reason) for e in events] == [
        (True, f"DR drill {drill.pk}"),
        (False, f"DR drill {drill.pk}: end"),
    ]
    # and: no alert
    assert not Alert.objects.filter(rule__name=DRILL_RULE.name, state=AlertState.FIRING).exists()


def test_drill__failures_rise__aborts_unblocks_at_once_and_alerts(
    campuses: dict[str, ServerProcess], drill_settings: Any
) -> None:
    drill_settings.DR_DRILL_SEND_TIMEOUT_SECONDS = 2.0
    # given: operators read alerts in their chat
    NotificationChannel.objects.get_or_create(
        name="Operators' chats", defaults={"kind": "chat", "min_severity": "warning"}
    )
    # and: the only other campus with endpoints lists a dead one (its servers are down)
    dead = f"ws://127.0.0.1:{free_port()}/ws/sync"
    for code, endpoints in (("sh-a", dead), ("sh-c", "")):
        campus = Campus.objects.get(code=code)
        campus.endpoints = endpoints
        campus_save(campus=campus, actor=None)
    # when: sh-b is drilled for up to two minutes
    drill = drill_run(campus="sh-b", trigger="command", block_seconds=120.0)
    # then: failures rose, and the drill unblocked sh-b long before the two minutes
    assert drill.outcome == DrillOutcome.ABORTED, drill.explanation
    assert drill.during_failed >= 3
    assert drill.during_rate > drill.before_rate
    assert drill.blocked_at is not None
    assert drill.unblocked_at is not None
    assert (drill.unblocked_at - drill.blocked_at).total_seconds() < 60
    assert not campus_is_blocked(code="sh-b")
    # and: operators are alerted through monitoring's rule and channels
    alert = Alert.objects.get(rule__name=DRILL_RULE.name)
    assert alert.state == AlertState.FIRING
    assert alert.notifications.exists()
    assert DrDrill.objects.get(pk=drill.pk).outcome == DrillOutcome.ABORTED


def test_drill__a_campus_already_blocked__is_skipped(
    drill_settings: Any, live_env: dict[str, str]
) -> None:
    from wechat_core.models import DataCenter

    shanghai, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
    for code, blocked in (("sh-a", False), ("sh-b", True)):
        campus_save(
            campus=Campus(code=code, datacenter=shanghai, name=code, endpoints="ws://x/ws/sync",
                          blocked=blocked),
            actor=None,
        )  # fmt: skip
    drill = drill_run(campus=None, trigger="beat", block_seconds=5.0)
    assert drill.outcome == DrillOutcome.SKIPPED
    assert "blocked already" in drill.explanation
    assert campus_is_blocked(code="sh-b")
