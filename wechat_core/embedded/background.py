"""Retrying work beside the request that caused it, in the embedded mode.

There Celery runs every task in the calling thread (CELERY_TASK_ALWAYS_EAGER), so
work with retries (a push to a slow developer server) would hold the user's
request for every attempt. Instead each job's attempts run in a small pool of
threads of its own, and the waits between attempts on the server's event loop.
That loop also carries the in-memory channel layer: from the pool's threads, a
notify reaches it the way it does from a request's thread. Production uses
Celery queues instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import SyncToAsync, sync_to_async
from django.db import connection

logger = logging.getLogger(__name__)

# A step runs once, and answers the seconds until the next run, or None when done.
Step = Callable[[], float | None]

_executors: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()
_running: set[Future[None]] = set()


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    with _lock:
        if name not in _executors:
            _executors[name] = ThreadPoolExecutor(
                max_workers=threads, thread_name_prefix=f"embedded-{name}"
            )
        return _executors[name]


def _attempt(step: Step, what: str) -> float | None:
    try:
        return step()
    except Exception:
        logger.exception("embedded %s failed; it stays pending", what)
        return None
    finally:
        connection.close()  # this pool thread's own connection, not a request's


async def _run(step: Step, what: str, executor: ThreadPoolExecutor) -> None:
    attempt = sync_to_async(_attempt, thread_sensitive=False, executor=executor)
    while (retry_in := await attempt(step, what)) is not None:
        await asyncio.sleep(retry_in)


def _run_blocking(step: Step, what: str) -> None:
    while (retry_in := _attempt(step, what)) is not None:
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


def retry_in_background(step: Step, *, what: str, pool: str, threads: int) -> None:
    """Run `step` until it answers None, waiting the seconds it answers in between,
    without holding the caller. `pool` names the threads (at most `threads`) the
    steps run in; `what` names the job in the log when a step raises (the job
    stops there: whatever it was doing stays pending for its sweep)."""
    loop = _server_loop()
    if loop is None:  # a management command or a shell: no clients to notify
        threading.Thread(
            target=_run_blocking, args=(step, what), name=f"embedded-{pool}", daemon=True
        ).start()
        return
    future = asyncio.run_coroutine_threadsafe(_run(step, what, _pool(pool, threads)), loop)
    _running.add(future)  # keep a reference until it is done
    future.add_done_callback(_running.discard)
