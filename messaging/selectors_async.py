"""The sync read on the event loop (issue 18), beside selectors.py.

A `sync` frame (or a long-poll: messaging.api.longpoll) of a current client on
PostgreSQL is answered without a worker thread: the ticket is checked from the
ticket cache, and the page (with its conversations) is read by this loop's
LoopReader (messaging/store/loopread.py),
with the statement and the decoding of selectors.sync_read_wire's thread path,
so the answer is the same text. Everything else returns None and the caller
runs selectors.sync_read_wire in a thread as before: a ticket not in the cache
(a database look-up decides), a client too old for groups or for every message
kind (its page is adapted in Python), the portable store (SQLite, the embedded
mode), MESSAGING_SYNC_ON_LOOP=false, and a loop connection that failed.
"""

from __future__ import annotations

import logging
import weakref
from asyncio import AbstractEventLoop, get_running_loop

import psycopg
from django.conf import settings

from accounts.tickets import ticket_require_cached
from accounts.types import VerifiedTicket
from messaging.compat import supports_all_kinds, supports_groups
from messaging.selectors import device_client_version, sync_limit, wire_page
from messaging.store import store
from messaging.store.loopread import LoopReader
from messaging.types import WireSyncPage

logger = logging.getLogger(__name__)

_readers: weakref.WeakKeyDictionary[AbstractEventLoop, LoopReader] = weakref.WeakKeyDictionary()


def reader() -> LoopReader:
    """This event loop's reader."""
    loop = get_running_loop()
    found = _readers.get(loop)
    if found is None:
        found = _readers[loop] = LoopReader(size=settings.MESSAGING_SYNC_LOOP_CONNECTIONS)
    return found


async def sync_read_wire_async(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    since: int,
    limit: int,
    client_version: str | None = None,
) -> WireSyncPage | None:
    """selectors.sync_read_wire on the event loop, or None where it must run in a
    thread (see the module). Raises what sync_read_wire raises for a bad ticket."""
    if not settings.MESSAGING_SYNC_ON_LOOP or store().name != "postgresql":
        return None
    if not ticket_require_cached(ticket, user_id=user_id):
        return None
    version = client_version if client_version is not None else device_client_version(ticket=ticket)
    if not (supports_groups(version) and supports_all_kinds(version)):
        return None
    try:
        page = await reader().sync_page(user_id, since, sync_limit(limit))
    except psycopg.Error:
        logger.warning("sync page on the event loop failed; reading it in a thread", exc_info=True)
        return None
    return wire_page(page, since=since, user_id=user_id)
