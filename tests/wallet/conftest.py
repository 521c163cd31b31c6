"""Fixtures of the wallet tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from devtools.processes import ServerProcess
from tests.support.paysandbox import Sandbox


@pytest.fixture
def balanced_now(db: None) -> None:
    """Check each ledger transaction's zero sum at once, not at commit: tests inside
    a rolled-back transaction never commit, and the deferred trigger would never run.
    (Postings are written in one statement, after their transaction's row.)"""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS wallet_posting_balanced IMMEDIATE")


@pytest.fixture
def sandbox(paysandbox: Sandbox, settings: Any) -> Iterator[Sandbox]:
    """The session's payment sandbox, without faults left by another test, and this
    process's settings pointed at it."""
    paysandbox.reset()
    settings.PAY_PROVIDER_URL = paysandbox.url
    yield paysandbox
    paysandbox.reset()


@pytest.fixture
def wallet_server(
    wallet_stack: tuple[ServerProcess, ServerProcess], sandbox: Sandbox, settings: Any
) -> ServerProcess:
    """The wallet stack's daphne, which the sandbox notifies (this process's orders too)."""
    daphne, _ = wallet_stack
    settings.PAY_NOTIFY_URL = f"{daphne.url}/api/wallet/pay/notify"
    return daphne
