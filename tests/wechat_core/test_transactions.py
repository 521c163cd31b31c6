"""Side effects after commit never fail the committed request (wechat_core.transactions)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from wechat_core.metrics import sample_value
from wechat_core.transactions import after_commit

ROOT = Path(__file__).resolve().parents[2]
APPS = [
    "accounts",
    "grayrelease",
    "messaging",
    "monitoring",
    "publicplatform",
    "wallet",
    "redpackets",
    "demo",
]


@pytest.mark.django_db
def test_after_commit__effect_raises__the_block_completes_and_the_failure_is_counted(
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given
    ran: list[str] = []
    before = sample_value("side_effects_failed_total", effect="test_effect")

    def broken() -> None:
        raise ConnectionError("broker unreachable")

    # when: one effect fails, the next still runs, and nothing reaches the caller
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        after_commit(broken, name="test_effect")
        after_commit(lambda: ran.append("next"), name="test_effect")
    # then
    assert ran == ["next"]
    assert sample_value("side_effects_failed_total", effect="test_effect") == before + 1


def test_apps__schedule_side_effects_only_through_after_commit() -> None:
    """A bare transaction.on_commit callback that raises turns a committed request
    into an error (issue 11: a stored send answered server_error with Redis down)."""
    bare = re.compile(r"\btransaction\.on_commit\(|\bon_commit\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for app in [*APPS, "wechat_core"]
        for path in sorted((ROOT / app).rglob("*.py"))
        if path.name != "transactions.py" or path.parent.name != "wechat_core"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line) and "def " not in line
    ]
    assert offenders == []
