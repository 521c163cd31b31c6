"""Run callables at the same moment on separate threads, each with its own DB connection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection


@dataclass(frozen=True)
class Outcome:
    value: Any = None
    error: BaseException | None = None


def run_together(calls: Sequence[Callable[..., Any]], timeout: float = 60.0) -> list[Outcome]:
    """Start every call behind one barrier, so they race for real; return each outcome."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Outcome | None] = [None] * len(calls)

    def worker(index: int, call: Callable[..., Any]) -> None:
        try:
            barrier.wait()
            outcomes[index] = Outcome(value=call())
        except BaseException as error:  # recorded for the test to inspect
            outcomes[index] = Outcome(error=error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert all(outcome is not None for outcome in outcomes), "a racing call did not finish"
    return [outcome for outcome in outcomes if outcome is not None]
