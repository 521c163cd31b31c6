"""Per-user sequences and sync logs (DESIGN.md §4), and the notify that follows commit.

Every app writes its users' entries through here (messaging's conversation events,
accounts' contact changes, grayrelease's flag pushes).

Sequences are allocated inside the transaction that writes the entries, locking
the users' sequence rows in user-id order: a later transaction touching the same
user waits for the earlier one to commit, so commit order equals sequence order
and a client that syncs from its key never skips an entry. Nothing about a
sequence lives only in Redis, so no restart can move one backwards.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection

from wechat_core import datacenters
from wechat_core.metrics import counter
from wechat_core.realtime import publish, publish_from_loop, user_group
from wechat_core.sync.models import EntryKind, SyncEntry, UserSequence
from wechat_core.transactions import after_commit

SYNC_ENTRIES = counter(
    "messaging_sync_entries_written_total",
    "Entries written into users' sync logs, by entry kind.",
    ["kind"],
    process_labels=True,
)


def entries_count_on_commit(kind: str, count: int) -> None:
    """Count entries once their transaction commits (a rollback wrote nothing)."""
    if count:
        after_commit(lambda: SYNC_ENTRIES.inc(kind, amount=count), name="metrics")


def sequences_allocate(counts: Mapping[int, int]) -> dict[int, int]:
    """Reserve `counts[user]` consecutive seqs for each user; return each user's new
    last seq (the reserved block ends there). Call inside a transaction."""
    if not counts:
        return {}
    user_ids = sorted(counts)
    # Lock in a fixed order so that concurrent writers never deadlock.
    locked = set(
        UserSequence.objects.select_for_update(no_key=True)
        .filter(user_id__in=user_ids)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    if len(locked) < len(user_ids):  # accounts get their row at creation; this is a fallback
        sequences_ensure(set(user_ids) - locked)
        list(
            UserSequence.objects.select_for_update(no_key=True)
            .filter(user_id__in=sorted(set(user_ids) - locked))
            .order_by("user_id")
            .values_list("user_id", flat=True)
        )
    by_increment: dict[int, list[int]] = defaultdict(list)
    for user_id in user_ids:
        by_increment[counts[user_id]].append(user_id)
    table = UserSequence._meta.db_table
    last: dict[int, int] = {}
    with connection.cursor() as cursor:
        for increment, ids in by_increment.items():
            placeholders = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f"UPDATE {table} SET last_seq = last_seq + %s "  # noqa: S608 - table name is ours
                f"WHERE user_id IN ({placeholders}) RETURNING user_id, last_seq",
                [increment, *ids],
            )
            last.update({int(user_id): int(seq) for user_id, seq in cursor.fetchall()})
    return last


def local_users(user_ids: Iterable[int]) -> set[int]:
    """The users among these homed in this data centre: only they have a sync log
    here (all of them with one data centre; issue 17)."""
    ids = set(user_ids)
    if not datacenters.enabled() or not ids:
        return ids
    users = apps.get_model(settings.AUTH_USER_MODEL)._default_manager
    here = users.filter(pk__in=ids, home_datacenter_id=datacenters.here())
    return set(here.values_list("pk", flat=True))


def sequences_ensure(user_ids: Iterable[int]) -> None:
    """Give these users a sequence row if they have none (in user-id order, so that
    concurrent callers cannot deadlock). Accounts get theirs at creation; the send
    path's SQL relies on every member having one. With several data centres, users
    homed elsewhere get none: their log is kept at home, and delivery here skips them."""
    UserSequence.objects.bulk_create(
        [UserSequence(user_id=user_id) for user_id in sorted(local_users(user_ids))],
        ignore_conflicts=True,
    )


def entries_append(entries: Iterable[SyncEntry]) -> dict[int, int]:
    """Give each unsaved entry the next seq of its user (in the order given), save
    them, and notify the users after commit. Returns each user's newest seq.

    Call it once per transaction with all the entries: each call locks its users'
    sequences in id order, and two calls in one transaction could lock a higher
    id before a lower one and deadlock with another writer.
    """
    pending = list(entries)
    counts = Counter(entry.user_id for entry in pending)
    last = sequences_allocate(counts)
    next_seq = {user_id: last[user_id] - counts[user_id] + 1 for user_id in counts}
    for entry in pending:
        entry.seq = next_seq[entry.user_id]
        next_seq[entry.user_id] += 1
    SyncEntry.objects.bulk_create(pending)
    for kind, count in Counter(str(entry.kind) for entry in pending).items():
        entries_count_on_commit(kind, count)
    notify_on_commit(last)
    return last


def entry_append(
    *,
    user_id: int,
    kind: EntryKind,
    payload: dict[str, Any] | None = None,
    conversation_id: int | None = None,
) -> int:
    """Append one entry to one user's log; returns its seq."""
    entry = SyncEntry(user_id=user_id, kind=kind, payload=payload, conversation_id=conversation_id)
    return entries_append([entry])[user_id]


def entries_append_payloads(
    *, kind: EntryKind, payloads: Mapping[int, dict[str, Any]]
) -> dict[int, int]:
    """Append one entry of `kind` to each user's log, with that user's payload
    (other apps' changes: gray-release flags). Returns each user's newest seq."""
    return entries_append(
        SyncEntry(user_id=user_id, kind=kind, payload=payloads[user_id])
        for user_id in sorted(payloads)
    )


def notify_on_commit(last_seqs: Mapping[int, int]) -> None:
    """After commit, tell each user's connected devices their newest seq.

    A lost notification costs latency, never data: clients also sync when they
    (re)connect and when a heartbeat shows them behind.
    """
    if last_seqs:
        pairs = dict(last_seqs)
        after_commit(lambda: notify_now(pairs), name="notify")


def notify_now(last_seqs: Mapping[int, int]) -> None:
    for user_id, seq in last_seqs.items():
        publish(user_group(user_id), {"type": "sync.notify", "seq": seq})


def notify_from_loop(last_seqs: Mapping[int, int]) -> None:
    """notify_now, from code running on the ASGI server's event loop (after its
    own commit): published from that loop (realtime.publish_from_loop)."""
    for user_id, seq in last_seqs.items():
        publish_from_loop(user_group(user_id), {"type": "sync.notify", "seq": seq})
