"""Applying a delivered batch: in one transaction, and when that fails, in halves,
so that one poison entry neither blocks nor loses the rest.

A batch whose transaction fails at an entry (a bad entry, or a deadlock with a
local writer) is applied again as what comes before it, it alone, and what comes
after; one that fails as a whole (at the commit, in a deferred delivery) is
halved, down to single entries. A poison entry costs a few transactions more,
not one per entry. A single entry
that fails is retried `REPLICATION_REPLAY_ATTEMPTS` times, each failure recorded
(`ReplayError`), then parked (`log.entry_park`: kept with its payload for
operators, passed over). The database failing (or an entry missing) parks
nothing: the error goes up, the replay drops its connection and RabbitMQ
delivers the batch again, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import InterfaceError, OperationalError

from wechat_core.metrics import counter
from wechat_core.replication.log import (
    EntryFailed,
    ReplayEntry,
    ReplayGap,
    entries_apply,
    entry_park,
    replay_error_record,
)

logger = logging.getLogger(__name__)

# Not the entry's fault: the database is down or busy (deadlock, timeout), or an
# entry was lost. Retried from the queue, never parked.
TRANSIENT = (OperationalError, InterfaceError, ReplayGap)

BATCHES = counter(
    "replication_replay_batches_total",
    "Batches the replay applied, by origin and how (whole: in one transaction; split: an "
    "entry failed, and it and the entries around it were applied on their own; halved: "
    "the batch failed as a whole, and each half was applied on its own).",
    ["origin", "how"],
    process_labels=True,
)


def batch_apply(*, origin: str, entries: Sequence[ReplayEntry],
                pause: Callable[[float], object]) -> None:  # fmt: skip
    """Apply `entries` of `origin`, in order, exactly once each, parking poison ones.
    Raises only what is not an entry's fault (TRANSIENT): then nothing was skipped."""
    try:
        entries_apply(origin=origin, entries=entries)
    except EntryFailed as failed:
        if len(entries) == 1:
            _one_apply(origin, entries[0], pause, first_error=failed.error)
            return
        # The entry is known: what comes before it, it alone, what comes after.
        logger.warning("replay: entry %d of a batch of %d from %s failed (%s)",
                       failed.index, len(entries), origin, failed.error)  # fmt: skip
        BATCHES.inc(origin, "split")
        if failed.index > 0:
            batch_apply(origin=origin, entries=entries[: failed.index], pause=pause)
        _one_apply(origin, entries[failed.index], pause)
        if failed.index + 1 < len(entries):
            batch_apply(origin=origin, entries=entries[failed.index + 1 :], pause=pause)
        return
    except Exception as error:
        if len(entries) == 1:
            _one_apply(origin, entries[0], pause, first_error=error)
            return
        # Failed as a whole (a deferred delivery, the commit): halve it.
        logger.warning("replay: a batch of %d from %s failed (%s); halving it",
                       len(entries), origin, error)  # fmt: skip
        BATCHES.inc(origin, "halved")
        middle = len(entries) // 2
        batch_apply(origin=origin, entries=entries[:middle], pause=pause)
        batch_apply(origin=origin, entries=entries[middle:], pause=pause)
        return
    BATCHES.inc(origin, "whole")


def _one_apply(origin: str, entry: ReplayEntry, pause: Callable[[float], object],
               first_error: BaseException | None = None) -> None:  # fmt: skip
    attempts = settings.REPLICATION_REPLAY_ATTEMPTS
    for attempt in range(1, attempts + 1):
        if attempt == 1 and first_error is not None:
            error = first_error
        else:
            try:
                entries_apply(origin=origin, entries=[entry])
                return
            except EntryFailed as failed:
                error = failed.error
            except Exception as failed:
                error = failed
        replay_error_record(origin=origin, position=entry.position, kind=entry.kind,
                            error=error)  # fmt: skip
        if isinstance(error, TRANSIENT):
            raise error
        if attempt < attempts:
            pause(0.1 * attempt)
    entry_park(origin=origin, entry=entry, error=error)
