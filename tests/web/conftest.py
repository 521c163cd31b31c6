"""Fixtures of the web client tests: Chromium per module, contexts closed per test."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.browser import browser, chromium

__all__ = ["browser", "chromium"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item (the `browser` fixture screenshots
    the pages of a failed test)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
