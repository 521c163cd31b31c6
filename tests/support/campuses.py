"""Three campuses serving at once, for the tests: an ASGI process per campus,
labelled with its CAMPUS, on the tests' database and Redis, and the Campus rows
listing their websocket endpoints (wechat_core.campuses)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.db import connection

from devtools.processes import ServerProcess, spawn_asgi_server, stop_all, wait_until_healthy
from tests.support.chat import ws_url
from wechat_core.models import Campus, DataCenter
from wechat_core.services import campus_set_blocked

CAMPUSES = ("sh-a", "sh-b", "sh-c")
# The servers look at their campus five times a second and spread moves over half a second.
CAMPUS_ENV = {"CAMPUS_WATCH_SECONDS": "0.2", "CAMPUS_MOVE_SPREAD_SECONDS": "0.5"}


@contextmanager
def campuses_running(
    *, env: dict[str, str], log_dir: Path, listed: tuple[str, ...] = CAMPUSES
) -> Iterator[dict[str, ServerProcess]]:
    """sh-a (daphne), sh-b (uvicorn), sh-c (daphne); the campuses in `listed`
    publish their endpoint, the others none (a page may be served from a campus
    whose links go elsewhere)."""
    servers: dict[str, ServerProcess] = {}
    try:
        for code, kind in zip(CAMPUSES, ("daphne", "uvicorn", "daphne"), strict=True):
            servers[code] = spawn_asgi_server(
                log_dir=log_dir,
                env=env | CAMPUS_ENV | {"DATACENTER": "sh", "CAMPUS": code},
                server=kind,
                name=f"campus-{code}",
            )
        for server in servers.values():  # booted side by side
            wait_until_healthy(server)
        datacenter, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
        for code, server in servers.items():
            Campus.objects.update_or_create(
                code=code,
                defaults={
                    "datacenter": datacenter,
                    "name": code.upper(),
                    "endpoints": ws_url(server) if code in listed else "",
                    "blocked": False,
                },
            )
        campus_set_blocked(code="sh-a", blocked=False, actor=None, reason="publish")
        _wait_until_every_server_sees(servers, listed)
        yield servers
    finally:
        stop_all(list(servers.values()))


def _wait_until_every_server_sees(
    servers: dict[str, ServerProcess], listed: tuple[str, ...]
) -> None:
    """Each process keeps a copy of the campus rows, renewed within a second of a
    change: wait until every one lists every published endpoint, or a move frame
    sent meanwhile would offer the endpoints of an earlier test's servers."""
    expected = {code: [ws_url(servers[code])] if code in listed else [] for code in servers}
    deadline = time.monotonic() + 30
    for server in servers.values():
        while True:
            campuses = httpx.get(f"{server.url}/api/topology", timeout=10).json()["campuses"]
            if {c["code"]: c["endpoints"] for c in campuses if c["code"] in expected} == expected:
                break
            assert time.monotonic() < deadline, f"{server.name} still sees {campuses}"
            time.sleep(0.05)


def set_blocked(code: str, blocked: bool, reason: str = "test") -> None:
    """The audited switch, from any thread (closing the thread's connection after)."""
    try:
        campus_set_blocked(code=code, blocked=blocked, actor=None, reason=reason)
    finally:
        connection.close()
