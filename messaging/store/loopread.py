"""Sync pages read on the event loop, on PostgreSQL (issue 18).

The websocket's `sync` used to hand every frame to a worker thread, whose
Django connection ran the page query and then an ORM query for the page's
conversations. At 200 messages/s that thread round trip, the pool's check of the
connection it lends and the ORM cost more of the server's CPU than the page
itself (docs/performance.md, "The end-to-end tail"). A `LoopReader` runs the same
statement (PostgresStore's `SYNC_PAGE`, which reads the conversations in the
same round trip) on asynchronous psycopg connections owned by the event loop:
the frame is parsed, read and answered without leaving the loop.

The statement and its decoding (`sync_page_of`) are the thread path's, so both
give the same bytes (tests/messaging/test_sync_on_loop.py). Each statement runs
in autocommit on its own snapshot, as on the thread path: a sync that follows a
notify sees the commit the notify announced. Up to
MESSAGING_SYNC_LOOP_CONNECTIONS connections are opened, when first needed, so
that a long catch-up page does not hold every short sync behind it; a connection
that fails is closed and the caller (messaging.selectors_async) answers that
sync on the thread path instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg

from messaging.store.base import SyncPageJson
from messaging.store.groupcommit import loop_connect_kwargs
from messaging.store.postgresql import SYNC_PAGE, sync_page_of

logger = logging.getLogger(__name__)


class LoopReader:
    """One per event loop: sync pages read on up to `size` connections of its own."""

    def __init__(self, *, size: int) -> None:
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []

    async def sync_page(self, user_id: int, since: int, limit: int) -> SyncPageJson:
        """PostgresStore.sync_page_json, on the loop (psycopg.Error when it fails)."""
        async with self._slots:
            connection = self._idle.pop() if self._idle else await self._connect()
            try:
                cursor = await connection.execute(
                    SYNC_PAGE, {"user": user_id, "since": since, "limit": limit}
                )
                row = await cursor.fetchone()
            except BaseException:
                # Whatever state it is in (a lost connection, a cancelled read
                # mid-answer), it is not lent again.
                await _close(connection)
                raise
            self._idle.append(connection)
        if row is None:  # an aggregate always answers one row
            raise psycopg.ProgrammingError("the sync page query returned no row")
        return sync_page_of(row)

    async def aclose(self) -> None:
        """Close the idle connections (tests; a process closes them on exit)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await _close(connection)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            # Bounded: a sync waiting on a connect that hangs falls back to the thread.
            **loop_connect_kwargs(application_name="wechat-syncread"),
            connect_timeout=5,
        )


async def _close(connection: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await connection.close()
