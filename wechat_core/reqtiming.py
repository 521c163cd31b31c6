"""Per-request stage timings, for benchmarks only (REQUEST_TIMING_FILE; empty: off).

What a slow HTTP request waited on, split where it can wait: the admission slot
(ADMISSION_HTTP_WORKERS), the hop from the event loop to its thread, the
database pool's connection, its queries, the Celery publish, the rest of the
view, and the hop back to the loop that writes the answer. Every request
appends one JSON line to the file (append-only writes of one line each, so
several processes may share it):

    {"id", "method", "path", "status", "arrived", "slot", "thread", "done", "sent",
     "db_wait", "db_query", "queries", "publish"}

Beside the requests, the process's own stalls, so a slow request can be told
apart from a paused process: every garbage collection of 5 ms or more
(`{"kind": "gc", "gen", "start", "end"}`), and every time a thread that only
sleeps 10 ms at a time woke 20 ms or more late (`{"kind": "tick", "start",
"end"}`: the process had no CPU, or another thread held the GIL).

`arrived` … `sent` are `time.perf_counter()` (CLOCK_MONOTONIC on Linux, the same
clock for every process of the machine, so a benchmark can put its own client
times beside them); `db_wait`, `db_query` and `publish` are sums in seconds.
`id` is the request's `X-Bench-Id` header (bench/overload.py sends one), so a
client's request is found. The path is logged without its query string, no
header other than that id is kept: no ticket or body ever reaches the file.

Off (the default), nothing here runs: asgi.py and the middleware list add the
wrapper and the middleware only when the setting is set, and the hooks in the
admission wrapper and the database backend cost one context-variable lookup.
"""

from __future__ import annotations

import contextvars
import gc
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "wechat_reqtiming", default=None
)
_publishing = threading.local()
_write_lock = threading.Lock()


def enabled() -> bool:
    return bool(getattr(settings, "REQUEST_TIMING_FILE", ""))


def mark(stage: str) -> None:
    """The current request reached `stage` now (nothing when timing is off)."""
    record = _current.get()
    if record is not None:
        record[stage] = time.perf_counter()


def add(what: str, seconds: float) -> None:
    """Add `seconds` to the current request's `what` (db_wait, db_query, publish)."""
    record = _current.get()
    if record is not None:
        record[what] = record.get(what, 0.0) + seconds


@contextmanager
def timed(what: str) -> Iterator[None]:
    if _current.get() is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        add(what, time.perf_counter() - started)


def _write(record: dict[str, Any]) -> None:
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    with _write_lock:
        fd = os.open(settings.REQUEST_TIMING_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


GC_LOGGED_SECONDS = 0.005
TICK_SECONDS = 0.01
TICK_LATE_SECONDS = 0.02


def _process_probes_start() -> None:
    """Garbage collections and late wake-ups of this process, into the file."""
    collecting: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            collecting["start"] = now
            return
        started = collecting.pop("start", now)
        if now - started >= GC_LOGGED_SECONDS:
            _write({"kind": "gc", "gen": info.get("generation"), "start": started, "end": now})

    def tick() -> None:
        while True:
            expected = time.perf_counter() + TICK_SECONDS
            time.sleep(TICK_SECONDS)
            woke = time.perf_counter()
            if woke - expected >= TICK_LATE_SECONDS:
                _write({"kind": "tick", "start": expected, "end": woke})

    gc.callbacks.append(on_gc)
    threading.Thread(target=tick, name="reqtiming-tick", daemon=True).start()


class TimingASGI:
    """Outermost HTTP wrapper: opens the record at arrival, closes it when the answer's
    last body message was handed to the server."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        _process_probes_start()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bench_id = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-bench-id":
                bench_id = value.decode("latin-1")[:32]
        record: dict[str, Any] = {
            "id": bench_id,
            "method": scope.get("method", ""),
            "path": scope.get("path", "")[:200],
            "arrived": time.perf_counter(),
        }
        token = _current.set(record)

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message.get("status", 0)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                record["sent"] = time.perf_counter()

        try:
            await self.app(scope, receive, timed_send)
        finally:
            _current.reset(token)
            _write(record)


class TimingMiddleware:
    """In the request's thread, right below AdmissionMiddleware: when the thread
    started, the time in database queries, when the view was done."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        _connect_celery_signals()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        mark("thread")
        record = _current.get()
        if record is None:
            return self.get_response(request)
        record.setdefault("queries", 0)

        def query(execute: Any, sql: Any, params: Any, many: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                record["queries"] += 1
                add("db_query", time.perf_counter() - started)

        with connections["default"].execute_wrapper(query):
            response = self.get_response(request)
        mark("done")
        return response


_signals_connected = False


def _connect_celery_signals() -> None:
    global _signals_connected
    if _signals_connected:
        return
    _signals_connected = True
    from celery.signals import after_task_publish, before_task_publish

    def before(**_: Any) -> None:
        _publishing.started = time.perf_counter()

    def after(**_: Any) -> None:
        started = getattr(_publishing, "started", None)
        if started is not None:
            add("publish", time.perf_counter() - started)
            _publishing.started = None

    before_task_publish.connect(before, weak=False)
    after_task_publish.connect(after, weak=False)
