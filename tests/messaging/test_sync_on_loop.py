"""The websocket's sync on the event loop (messaging/selectors_async.py,
messaging/store/loopread.py) answers exactly what the thread path answers.

Given a log with contact notices, 1:1 and group messages, a quote, a mention, a
recall, a system notice and a read position, committed (the loop's connections
see committed data only), when the same sync is read on the event loop and in
the thread path, then the sync.result frames are the same text; the
conversations they describe are those the Python selector describes; and where
the loop path does not apply (a client too old for groups, the switch off, a
ticket not in the cache, a connection that died) it answers None so the caller
reads in a thread, and recovers on the next sync.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

import pytest
from django.db import connection

from accounts import tickets
from accounts.tickets import ticket_require
from messaging import protocol
from messaging.selectors import sync_read, sync_read_wire
from messaging.selectors_async import reader, sync_read_wire_async
from messaging.types import WireSyncPage
from tests.factories import Session, login_session
from tests.support.synclogs import busy_log

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bob() -> Session:
    b = busy_log()
    ticket_require(b.ticket, user_id=b.user.pk)  # in the ticket cache, as on a live link
    return b


def on_loop(session: Session, since: int, limit: int, **kwargs: Any) -> WireSyncPage | None:
    async def main() -> WireSyncPage | None:
        try:
            return await sync_read_wire_async(
                ticket=session.ticket, user_id=session.user.pk, since=since, limit=limit, **kwargs
            )
        finally:
            await reader().aclose()

    return asyncio.run(main())


def frame(page: WireSyncPage) -> str:
    return protocol.sync_json(page, frame_id="s1", frame=True)


@pytest.mark.parametrize(("since", "limit"), [(0, 1000), (0, 3), (4, 5), (1000, 10), (0, 0)])
def test_sync_on_loop__any_page__is_the_thread_paths_frame(
    bob: Session, since: int, limit: int
) -> None:
    # when
    loop_page = on_loop(bob, since, limit)
    thread_page = sync_read_wire(ticket=bob.ticket, user_id=bob.user.pk, since=since, limit=limit)
    python_page = sync_read(ticket=bob.ticket, user_id=bob.user.pk, since=since, limit=limit)
    # then
    assert loop_page is not None
    assert frame(loop_page) == frame(thread_page)
    assert json.loads(loop_page.entries_json) == python_page.entries
    assert loop_page.conversations == python_page.conversations  # as the ORM read them
    assert (loop_page.key, loop_page.more) == (python_page.key, python_page.more)


def test_sync_on_loop__for_an_old_client__is_left_to_the_thread(bob: Session) -> None:
    assert on_loop(bob, 0, 100, client_version="1.9.0") is None


def test_sync_on_loop__switched_off__is_left_to_the_thread(bob: Session, settings: Any) -> None:
    settings.MESSAGING_SYNC_ON_LOOP = False
    assert on_loop(bob, 0, 100) is None


def test_sync_on_loop__ticket_not_cached__is_left_to_the_thread(bob: Session) -> None:
    # given: a ticket of a new login, never checked in this process
    fresh = login_session(bob.user)
    tickets._cache._entries.pop(fresh.ticket.ticket_id, None)
    # then
    assert on_loop(fresh, 0, 100) is None


def test_sync_on_loop__connection_dies__falls_back_once_then_reads_again(bob: Session) -> None:
    async def main() -> list[WireSyncPage | None]:
        def read() -> Awaitable[WireSyncPage | None]:
            return sync_read_wire_async(ticket=bob.ticket, user_id=bob.user.pk, since=0, limit=100)

        pages = [await read()]
        # when: the reader's idle connection is killed (a PostgreSQL restart, a failover)
        await asyncio.to_thread(_terminate_sync_readers)
        pages.append(await read())
        pages.append(await read())
        await reader().aclose()
        return pages

    first, after_kill, next_one = asyncio.run(main())
    # then: the sync that met the dead connection goes to the thread; the next reads again
    assert first is not None
    assert after_kill is None
    assert next_one is not None
    assert frame(next_one) == frame(first)


def _terminate_sync_readers() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'wechat-syncread' AND datname = current_database()"
        )
        assert cursor.fetchall(), "no sync reader connection to terminate"
    connection.close()
