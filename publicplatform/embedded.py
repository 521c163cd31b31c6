"""Webhook pushes in the embedded mode (`make run`), beside the request that caused them.

There Celery runs every task in the calling thread (CELERY_TASK_ALWAYS_EAGER), so
a push to a slow developer server, with its retries, would hold the user's
request for up to three timeouts. Instead each push's attempts run in a small
pool of threads of its own (PUBLICPLATFORM_EMBEDDED_WEBHOOK_THREADS), and the
waits between attempts on the server's event loop. That loop also carries the
in-memory channel layer: from the pool's threads, the reply's notify reaches it
the way it does from a request's thread. Production and the live tests use the
Celery `webhook` queue instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_running: set[Future[None]] = set()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.PUBLICPLATFORM_EMBEDDED_WEBHOOK_THREADS,
                thread_name_prefix="embedded-webhook",
            )
        return _executor


def _attempt(delivery_id: int) -> float | None:
    """One step of the push; seconds until the next one, or None when it is done."""
    from publicplatform.services.webhooks import delivery_step

    try:
        return delivery_step(delivery_id=delivery_id).retry_in
    except Exception:
        logger.exception("embedded webhook push %s failed; it stays pending", delivery_id)
        return None
    finally:
        connection.close()  # this pool thread's own connection, not a request's


async def _deliver(delivery_id: int) -> None:
    attempt = sync_to_async(_attempt, thread_sensitive=False, executor=_pool())
    while (retry_in := await attempt(delivery_id)) is not None:
        await asyncio.sleep(retry_in)


def _deliver_blocking(delivery_id: int) -> None:
    while (retry_in := _attempt(delivery_id)) is not None:
        time.sleep(retry_in)


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's event loop: the caller's own, or, from a thread of the
    server's sync_to_async (a request, a websocket command), the loop it serves,
    found where asgiref's async_to_sync looks for it."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop) and loop.is_running():
        return loop
    return None


def delivery_start_in_background(*, delivery_id: int) -> None:
    """Run every attempt of a push without holding the caller."""
    loop = _server_loop()
    if loop is None:  # a management command or a shell: no clients to notify
        threading.Thread(
            target=_deliver_blocking, args=(delivery_id,), name="embedded-webhook", daemon=True
        ).start()
        return
    future = asyncio.run_coroutine_threadsafe(_deliver(delivery_id), loop)
    _running.add(future)  # keep a reference until it is done
    future.add_done_callback(_running.discard)
