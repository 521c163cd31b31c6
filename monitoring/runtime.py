"""What runs inside each server process: the history flusher. (In the embedded
mode alert evaluation and purges run from wechat_core.embedded.beat, like every
other scheduled task.)

`process_start` is called by the ASGI entry point (wechat_core.asgi) and by Celery
workers (their process-init signals, monitoring.instrument.celery); management
commands and the test process do not write history. The flusher is one daemon
thread per process (a forked Celery child starts its own): at every multiple of
MONITORING_FLUSH_SECONDS (plus a little jitter, so processes do not write at the
same instant) it writes what changed into the history (services.history). A
failed write keeps the changes for the next attempt; at exit the process writes
a last time. A crash loses at most one interval of this process's counts.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import random
import socket
import threading
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections
from django.utils import timezone

from monitoring.services.history import DeltaTracker, history_write
from wechat_core import metrics

logger = logging.getLogger(__name__)


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _connect_outside_the_pool() -> None:
    """Give the calling thread its own connection, outside the process's pool.

    In a Celery prefork child, Celery's Django fix-up closes the process's
    connection pool before and after every task (celery.fixups.django), and the
    pool is shared by every thread of the process: a flush running beside a task
    found the pool closed under it (PoolClosed), or waited on a pool whose
    threads were gone (PoolTimeout), flush after flush on a busy worker. The
    flusher's thread connects on its own instead, once per flush (it closes its
    connection after each), which costs a connection every
    MONITORING_FLUSH_SECONDS.
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    options = wrapper.settings_dict.get("OPTIONS", {})
    if "pool" in options:
        # A copy for this thread's wrapper only; other threads keep the pool.
        unpooled = {key: value for key, value in options.items() if key != "pool"}
        wrapper.settings_dict = {**wrapper.settings_dict, "OPTIONS": unpooled}


class Flusher:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.tracker = DeltaTracker()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="metrics-flusher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        _connect_outside_the_pool()
        period = settings.MONITORING_FLUSH_SECONDS
        while not self._stop.is_set():
            now = time.time()
            wake = (now // period + 1) * period + 0.2 + random.random() * 0.4  # noqa: S311
            if self._stop.wait(wake - now):
                return
            self.flush()

    def flush(self) -> int:
        """Write this process's changes since the last flush; returns the rows written."""
        with self._lock:
            try:
                values = metrics.snapshot()
                deltas = self.tracker.deltas(values)
                written = history_write(
                    deltas=deltas, ended=timezone.now(), instance=instance_name()
                )
                self.tracker.commit(values)
                return written
            except Exception:
                logger.warning("could not write metric history; will retry", exc_info=True)
                return 0
            finally:
                if threading.current_thread() is self.thread:
                    close_old_connections()
                    connection.close()

    def stop(self) -> None:
        self._stop.set()


_flusher: Flusher | None = None
_start_lock = threading.Lock()


def process_start() -> None:
    """Start this process's monitoring threads (idempotent, fork-aware)."""
    global _flusher
    if not settings.MONITORING_ENABLED:
        return
    with _start_lock:
        _forget_dead_processes()
        if settings.MONITORING_HISTORY_ENABLED and (
            _flusher is None or _flusher.pid != os.getpid()
        ):
            _flusher = Flusher()
            atexit.register(_final_flush, _flusher)


def _final_flush(flusher: Flusher) -> None:
    if flusher.pid == os.getpid():
        flusher.stop()
        flusher.flush()
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def flush_now() -> int:
    """Flush this process at once (tests, and Celery children before they exit)."""
    return _flusher.flush() if _flusher is not None and _flusher.pid == os.getpid() else 0


def _forget_dead_processes() -> None:
    """Live gauges of processes that died without cleaning up would count forever."""
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if not directory:
        return
    from prometheus_client import multiprocess

    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        try:
            pid = int(path.rsplit("_", 1)[1].removesuffix(".db"))
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except (ValueError, PermissionError):
            continue
