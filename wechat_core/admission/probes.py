"""Queuing time that no single request shows: the event loop's lag and the queue of
the loop's default thread pool (where websocket frames run their services).

One task per process and event loop, started by the first HTTP request or
websocket frame: every ADMISSION_PROBE_SECONDS it sleeps and measures how late it
woke, then hands a no-op to the thread pool and measures how long it waited to
start. Both feed the controller as probes.
"""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from wechat_core.admission.controller import controller
from wechat_core.admission.metrics import QUEUE_SECONDS

_task: asyncio.Task[None] | None = None


def probes_start() -> None:
    """Start the probes in the running loop, once (cheap when they run)."""
    global _task
    if _task is not None and not _task.done():
        return
    if settings.ADMISSION_PROBE_SECONDS <= 0:
        return
    _task = asyncio.get_running_loop().create_task(_probe())


async def _probe() -> None:
    loop = asyncio.get_running_loop()
    interval = settings.ADMISSION_PROBE_SECONDS
    while True:
        planned = time.perf_counter() + interval
        await asyncio.sleep(interval)
        lag = max(0.0, time.perf_counter() - planned)
        controller().queued(lag, probe=True)
        QUEUE_SECONDS.observe("loop", value=lag)
        submitted = time.perf_counter()
        started = await loop.run_in_executor(None, time.perf_counter)
        waited = max(0.0, started - submitted)
        controller().queued(waited, probe=True)
        QUEUE_SECONDS.observe("executor", value=waited)
