"""Writing replication entries, and applying them idempotently in order per origin:
a batch in one transaction, a poison entry parked on its own (`entry_park`).

Order matters within an ordering key, not across the whole stream: each kind of
entry says which keys it orders on (a conversation's events on the conversation, a
contact change on the users it touches; `replay_handler_register(keys=...)`). An
entry that shares a key with a parked one is not applied before it: it is parked
too, without being tried, as waiting behind it (`ParkedEntry.behind`), and takes
its keys along; the entries of other keys go on. When an operator replays the
parked entry (`parked_entry_replay`), those waiting behind it are applied after
it, in their order.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from django.db import connection, transaction
from django.utils import timezone

from wechat_core import datacenters
from wechat_core.metrics import counter
from wechat_core.replication.models import (
    ParkedEntry,
    ReplayError,
    ReplayPosition,
)

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "wechat_replication_outbox"

ReplayHandler = Callable[[dict[str, Any], str], None]  # (payload, origin data centre)
OrderingKeys = Callable[[dict[str, Any]], Iterable[str]]  # payload -> keys, e.g. "user:42"
_handlers: dict[str, ReplayHandler] = {}
_ordering_keys: dict[str, OrderingKeys] = {}

REPLAYED = counter(
    "replication_replayed_total",
    "Replication entries replayed here, by origin and outcome (applied, duplicate, ignored, "
    "parked, waiting: parked behind a parked entry of the same ordering key).",
    ["origin", "outcome"],
    process_labels=True,
)
REPLAY_ERRORS = counter(
    "replication_replay_errors_total",
    "Replication entries whose replay failed here (retried), by origin and kind.",
    ["origin", "kind"],
    process_labels=True,
)


class ReplayGap(Exception):
    """An entry arrived past the next expected position: something was lost."""


class EntryFailed(Exception):
    """Entry `index` of a batch failed with `error` (the batch was rolled back)."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"entry {index}: {_describe(error)}")
        self.index = index
        self.error = error


_batchable: set[str] = set()


WAITING = "waiting, untried, behind an earlier parked entry sharing an ordering key (behind)"


class ParkedEntryWaiting(Exception):
    """The parked entry waits behind another one of its ordering keys: replay that one."""


def replay_handler_register(kind: str, handler: ReplayHandler, *, batchable: bool = False,
                            keys: OrderingKeys | None = None) -> None:  # fmt: skip
    """Apps register how to apply their entries (in their AppConfig.ready). Entries
    of a `batchable` kind are applied many to a transaction; the others one per
    transaction: a handler that locks rows local writers lock too (a conversation
    mastered here, users' sequences) must not hold them across entries, or a batch
    and a local send could deadlock. `keys` gives an entry's ordering keys: it waits
    behind a parked entry sharing one (an entry with none never waits)."""
    _handlers[kind] = handler
    if batchable:
        _batchable.add(kind)
    if keys is not None:
        _ordering_keys[kind] = keys
    else:
        _ordering_keys.pop(kind, None)


def entry_keys(kind: str, payload: dict[str, Any]) -> list[str]:
    """The ordering keys of an entry (none when its payload does not give them: its
    handler fails on it then, and it is parked on its own)."""
    keys_of = _ordering_keys.get(kind)
    if keys_of is None:
        return []
    try:
        return sorted(set(keys_of(payload)))
    except (KeyError, TypeError, ValueError):
        return []


def batches(entries: Sequence[ReplayEntry], size: int) -> Iterator[Sequence[ReplayEntry]]:
    """`entries` cut into transactions: runs of a batchable kind, at most `size`
    long, and every other entry alone."""
    start = 0
    while start < len(entries):
        end = start + 1
        if entries[start].kind in _batchable:
            while (end < len(entries) and end - start < size
                   and entries[end].kind == entries[start].kind):  # fmt: skip
                end += 1
        yield entries[start:end]
        start = end


def replicate(kind: str, payload: dict[str, Any]) -> None:
    """Add an entry for the other data centres to the current transaction (nothing
    with one data centre). The relay is woken when the transaction commits."""
    if not datacenters.enabled():
        return
    # The row and the relay's wake-up (delivered at commit, once per transaction)
    # in one round trip: this is on the path of every replicated send.
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH entry AS (INSERT INTO wechat_core_outboxentry (kind, payload, created_at) "
            "VALUES (%s, %s::jsonb, %s) RETURNING id) SELECT pg_notify(%s, '') FROM entry",
            [kind, json.dumps(payload), timezone.now(), NOTIFY_CHANNEL],
        )


@dataclass(frozen=True)
class ReplayEntry:
    """One entry as shipped: its origin's position, kind, payload and write time."""

    position: int
    kind: str
    payload: dict[str, Any]
    written_at: float  # at the origin, seconds since the epoch


# Actions handlers put off to the end of a run of entries (one stack level per
# transaction being applied): a conversation's delivery runs once for a run of its
# events instead of once per event.
_deferred: list[dict[tuple[str, int], Callable[[], None]]] = []


def replay_defer(key: tuple[str, int], action: Callable[[], None]) -> None:
    """Run `action` later in the transaction applying this entry: before the next
    entry of another kind (so that what users' logs get keeps the origin's order
    across kinds) or at the end of the batch, once per `key`, in key order. Outside
    a replay it runs now."""
    if not _deferred:
        action()
        return
    _deferred[-1].setdefault(key, action)


Deferred = TypeVar("Deferred", bound=Callable[[], None])


def replay_deferred(key: tuple[str, int], make: Callable[[], Deferred]) -> Deferred | None:
    """The action deferred under `key` in the transaction applying this entry (made
    with `make` if there is none yet), for a handler that gathers work into it
    across the entries of a run (rows to insert at once); None outside a replay,
    where the handler does its work now. It dies with the transaction: a batch
    rolled back leaves nothing gathered behind."""
    if not _deferred:
        return None
    actions = _deferred[-1]
    if key not in actions:
        actions[key] = make()
    return cast(Deferred, actions[key])


def _deferred_run() -> None:
    actions = _deferred[-1]
    while actions:
        actions.pop(min(actions))()


def _position_lock(origin: str) -> ReplayPosition:
    state, _ = ReplayPosition.objects.select_for_update().get_or_create(origin=origin)
    return state


def _position_move(state: ReplayPosition, position: int, written_at: float) -> None:
    state.position = position
    state.written_at = dt.datetime.fromtimestamp(written_at, tz=dt.UTC)
    state.applied_at = timezone.now()
    state.save()


def _handle(entry: ReplayEntry, origin: str) -> str:
    handler = _handlers.get(entry.kind)
    if handler is None:
        logger.warning("no replay handler for %s entries (from %s)", entry.kind, origin)
        return "ignored"
    handler(entry.payload, origin)
    return "applied"


def _parked_keys(origin: str) -> dict[str, int]:
    """Each ordering key held by a parked entry of `origin`: the first one's position."""
    held: dict[str, int] = {}
    for position, keys in (
        ParkedEntry.objects.filter(origin=origin).order_by("position").values_list(
            "position", "keys")
    ):  # fmt: skip
        for key in keys:
            held.setdefault(key, position)
    return held


def _entry_hold(origin: str, entry: ReplayEntry, keys: list[str], behind: int) -> None:
    """Park `entry` untried, as waiting behind the parked entry at `behind`."""
    ParkedEntry.objects.create(
        origin=origin,
        position=entry.position,
        kind=entry.kind,
        payload=entry.payload,
        written_at=dt.datetime.fromtimestamp(entry.written_at, tz=dt.UTC),
        error=WAITING,
        keys=keys,
        behind=behind,
    )


def entries_apply(*, origin: str, entries: Sequence[ReplayEntry]) -> Counter[str]:
    """Apply `entries` of `origin` (in position order) in one transaction, skipping
    those applied already and parking untried those that share an ordering key with
    a parked entry; the origin's position moves with them. All or nothing: any
    failure rolls the whole batch back; one of an entry's handler is raised as
    EntryFailed. Returns the count of each outcome."""
    outcomes: Counter[str] = Counter()
    with transaction.atomic():
        state = _position_lock(origin)
        if connection.vendor == "postgresql":
            # A bad reference fails at its entry, not at the commit: the failing
            # entry is then known (EntryFailed) and the rest of the batch need not
            # be bisected to find it.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        held = _parked_keys(origin)
        position = state.position
        last: ReplayEntry | None = None  # the last entry past (for the position)
        last_kind: str | None = None  # the kind of the last entry applied
        _deferred.append({})
        try:
            for index, entry in enumerate(entries):
                if entry.position <= position:
                    outcomes["duplicate"] += 1
                    continue
                if entry.position != position + 1:
                    raise ReplayGap(f"{origin}: expected position {position + 1}, got "
                                    f"{entry.position}")  # fmt: skip
                keys = entry_keys(entry.kind, entry.payload) if held else []
                if waits := [held[key] for key in keys if key in held]:
                    _entry_hold(origin, entry, keys, min(waits))
                    for key in keys:  # what comes later with its other keys waits too
                        held.setdefault(key, entry.position)
                    outcomes["waiting"] += 1
                    position, last = entry.position, entry
                    continue
                if last_kind is not None and entry.kind != last_kind:
                    _deferred_run()
                try:
                    outcomes[_handle(entry, origin)] += 1
                except Exception as error:
                    raise EntryFailed(index, error) from error
                position, last, last_kind = entry.position, entry, entry.kind
            _deferred_run()
        finally:
            _deferred.pop()
        if last is not None:
            _position_move(state, last.position, last.written_at)
    for outcome, count in outcomes.items():
        REPLAYED.inc(origin, outcome, amount=count)
    return outcomes


def entry_apply(*, origin: str, position: int, kind: str, payload: dict[str, Any],
                written_at: float) -> str:  # fmt: skip
    """Apply one entry from `origin` unless it was applied already. Returns the outcome."""
    entry = ReplayEntry(position, kind, payload, written_at)
    try:
        outcomes = entries_apply(origin=origin, entries=[entry])
    except EntryFailed as failed:
        raise failed.error from None
    return next(iter(outcomes))


def entry_park(*, origin: str, entry: ReplayEntry, error: BaseException) -> bool:
    """Pass over a poison entry: keep it (payload and error) for operators and move
    the origin's position past it, in one transaction. False when it was applied
    meanwhile (nothing to park)."""
    with transaction.atomic():
        state = _position_lock(origin)
        if entry.position <= state.position:
            return False
        if entry.position != state.position + 1:
            raise ReplayGap(f"{origin}: expected position {state.position + 1}, got "
                            f"{entry.position}")  # fmt: skip
        ParkedEntry.objects.create(
            origin=origin,
            position=entry.position,
            kind=entry.kind,
            payload=entry.payload,
            written_at=dt.datetime.fromtimestamp(entry.written_at, tz=dt.UTC),
            error=_describe(error),
            keys=entry_keys(entry.kind, entry.payload),
        )
        _position_move(state, entry.position, entry.written_at)
    REPLAYED.inc(origin, "parked")
    logger.error("replay: parked %s entry %s#%s: %s", entry.kind, origin, entry.position,
                 _describe(error))  # fmt: skip
    return True


def _parked_apply(parked: ParkedEntry) -> str:
    entry = ReplayEntry(parked.position, parked.kind, parked.payload,
                        parked.written_at.timestamp())  # fmt: skip
    _deferred.append({})
    try:
        outcome = _handle(entry, parked.origin)
        _deferred_run()
    finally:
        _deferred.pop()
    parked.delete()
    return outcome


def parked_entry_replay(*, parked_id: int) -> int:
    """Apply a parked entry now (an operator fixed its cause) and forget it, then the
    entries that waited behind it and wait behind nothing else any more, in their
    order. An entry that fails then is parked on its own (its error kept), and what
    shares its keys goes on waiting behind it. Entries of other ordering keys were
    applied meanwhile. Returns how many entries were applied. Raises
    ParkedEntryWaiting for an entry that waits behind another (replay that one)."""
    with transaction.atomic():
        parked = ParkedEntry.objects.select_for_update().get(pk=parked_id)
        origin = parked.origin
        # Every parked entry of the origin, locked in position order: a concurrent
        # replay of another waits, and sees what this one left.
        rows = list(ParkedEntry.objects.select_for_update().filter(origin=origin)
                    .order_by("position"))  # fmt: skip
        blocked: dict[str, int] = {}
        for row in rows:
            if row.position == parked.position:
                if waits := [blocked[key] for key in row.keys if key in blocked]:
                    raise ParkedEntryWaiting(
                        f"{origin}#{row.position} waits behind {origin}#{min(waits)}: "
                        "replay that one first"
                    )
                break
            for key in row.keys:
                blocked.setdefault(key, row.position)
        rest = [row for row in rows if row.position != parked.position]
        outcomes = Counter([_parked_apply(parked)])
        outcomes.update(_waiting_release(origin, rest))
    for outcome, count in outcomes.items():
        REPLAYED.inc(origin, outcome, amount=count)
    return sum(outcomes.values())


def _waiting_release(origin: str, rows: list[ParkedEntry]) -> Counter[str]:
    """Apply the waiting entries among `rows` (an origin's parked entries, in order)
    that no longer wait behind anything."""
    outcomes: Counter[str] = Counter()
    blocked: dict[str, int] = {}  # key -> the first parked entry left holding it
    for row in rows:
        if row.behind is not None:
            if waits := [blocked[key] for key in row.keys if key in blocked]:
                if row.behind != min(waits):  # what it waits behind now
                    row.behind = min(waits)
                    row.save(update_fields=["behind"])
            else:
                try:
                    with transaction.atomic():
                        outcomes[_parked_apply(row)] += 1
                    continue
                except Exception as error:
                    # Failing on its own now: it needs an operator, as any parked entry.
                    row.behind, row.error = None, _describe(error)
                    row.save(update_fields=["behind", "error"])
                    logger.error("replay: %s entry %s#%s, released, failed: %s", row.kind,
                                 origin, row.position, row.error)  # fmt: skip
        for key in row.keys:  # it is left parked: what shares a key with it waits
            blocked.setdefault(key, row.position)
    return outcomes


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def replay_error_record(*, origin: str, position: int, kind: str, error: BaseException) -> None:
    REPLAY_ERRORS.inc(origin, kind)
    try:
        ReplayError.objects.create(
            origin=origin, position=position, kind=kind, error=_describe(error)
        )
    except Exception:  # the database itself may be what failed
        logger.warning("could not record a replay error", exc_info=True)
