"""A server made overloaded on purpose (FastReject, docs/overload.md), for the tests.

`small_server_start` starts a daphne with one worker slot and FastReject on, so a
modest flood of requests queues long enough to count as overload; the flood is
`flood_requests` (in the test's own event loop) or `SendFlood` (in a thread of its
own, beside Playwright's sync API, whose thread already runs an event loop).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from devtools.processes import ServerProcess, start_asgi_server

# Sends, none of them with a valid ticket: the refusal comes before any view, and an
# admitted one is answered 401 by the view. Sends are the class just above
# connections (docs/overload.md), so once some are refused every connect is.
SEND_ROUTE = ("POST", "/api/messaging/send")


def small_server_start(
    *, env: dict[str, str], log_dir: Path, name: str, threshold_ms: int = 20
) -> ServerProcess:
    """A daphne with one worker slot and short windows: a flood overloads it soon."""
    return start_asgi_server(
        log_dir=log_dir,
        env=env
        | {
            "ADMISSION_ENABLED": "true",
            "ADMISSION_HTTP_WORKERS": "1",
            "ADMISSION_WINDOW_SECONDS": "0.2",
            "ADMISSION_QUEUE_THRESHOLD_MS": str(threshold_ms),
        },
        name=name,
    )


async def flood_requests(
    client: httpx.AsyncClient,
    route: tuple[str, str],
    n: int,
    stop: asyncio.Event,
    seen: Callable[[httpx.Response], None],
) -> None:
    """Flood client `n`: `route` (method, path) again and again until `stop`, each time
    with one of 50 made-up tickets of its own (refused by the view when admitted)."""
    method, path = route
    i = 0
    while not stop.is_set():
        i += 1
        headers = {"Authorization": f"Ticket t1.{n * 1000 + i % 50}.{'x' * 43}"}
        try:
            response = await client.request(method, path, headers=headers, json={})
        except httpx.HTTPError:
            continue
        seen(response)


class SendFlood:
    """`clients` clients flooding a server with sends from a thread of their own,
    until the block ends:

        with SendFlood(server) as flood:
            flood.wait_refused(5)
    """

    def __init__(self, server: ServerProcess, clients: int = 48) -> None:
        self.server = server
        self.clients = clients
        self.refused = 0  # sends answered 503 overloaded
        self.answered = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="send-flood", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> SendFlood:
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the flood did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if self._error is not None:
            raise self._error

    def wait_refused(self, count: int, timeout: float = 120.0) -> None:
        """Until the server has refused `count` sends (it is overloaded)."""
        deadline = time.monotonic() + timeout
        while self.refused < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"not overloaded: {self.answered} answered, none refused")
            time.sleep(0.05)

    def _seen(self, response: httpx.Response) -> None:
        self.answered += 1
        self.refused += response.status_code == 503

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # reported to the test thread by stop()
            self._error = error
            self._started.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        limits = httpx.Limits(max_connections=self.clients + 12)
        async with httpx.AsyncClient(base_url=self.server.url, limits=limits, timeout=60) as c:
            self._started.set()
            await asyncio.gather(
                *(
                    flood_requests(c, SEND_ROUTE, n, self._stop, self._seen)
                    for n in range(self.clients)
                )
            )
