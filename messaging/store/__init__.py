"""The storage of the send path and the sync read, chosen once by database vendor.

`store()` is the one entry: services and selectors call its methods and never
ask which database they run on (messaging.store.base has the interface and the
rules; postgresql and portable implement them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from messaging.store.base import MessageStore
from messaging.store.portable import PortableStore
from messaging.store.postgresql import PostgresStore

_chosen: dict[str, MessageStore] = {}
_forced: list[MessageStore] = []


def store() -> MessageStore:
    """The store for this process's database: PostgreSQL's own, else the portable one."""
    if _forced:
        return _forced[-1]
    vendor = connection.vendor
    chosen = _chosen.get(vendor)
    if chosen is None:
        chosen = _chosen[vendor] = PostgresStore() if vendor == "postgresql" else PortableStore()
    return chosen


@contextmanager
def store_used(chosen: MessageStore) -> Iterator[MessageStore]:
    """Run with another implementation (the parity tests run both on PostgreSQL)."""
    _forced.append(chosen)
    try:
        yield chosen
    finally:
        _forced.remove(chosen)
