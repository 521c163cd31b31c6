"""Operators see DR drill reports on the monitoring pages (/monitoring/drills)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.services.operators import operator_grant
from monitoring.models import DrDrill, DrillOutcome
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_drills_page__lists_reports_newest_first__operators_only(client: Any) -> None:
    DrDrill.objects.create(
        campus="sh-b", trigger="beat", outcome=DrillOutcome.PASSED, before_sent=30,
        during_sent=180, moved_clients=4, reconnect_max_ms=812, explanation="passed: fine",
    )  # fmt: skip
    DrDrill.objects.create(
        campus="sh-c", trigger="command", outcome=DrillOutcome.ABORTED, during_sent=20,
        during_failed=9, explanation="aborted and unblocked at once",
    )  # fmt: skip
    # an anonymous visitor is sent to log in
    assert client.get("/monitoring/drills").status_code == 302
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    page = client.get("/monitoring/drills").content.decode()
    assert page.index('data-outcome="aborted"') < page.index('data-outcome="passed"')
    assert "9 / 20" in page
    assert "812 ms" in page
    assert 'data-testid="nav-drills"' in page
