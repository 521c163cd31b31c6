"""Two data centres on one machine (issue 17): each its own PostgreSQL database, its
own Redis (a private server), its own ASGI server, replication relay and replay
worker; RabbitMQ (localhost:5672) carries the replication queues, named with a
prefix of this test run's own. With `links=True` each data centre reaches RabbitMQ
through a link of its own that a test can cut (`centre.link.cut()`, tests/support/links.py).

    with datacentres_running(env=live_env, log_dir=live_log_dir) as (sh, hk): ...

or the module-scoped fixture `dcs` (import it into the test module); `register`,
`befriend` and friends act on them over HTTP, as clients do.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from kombu import Connection

from devtools.processes import (
    ROOT,
    ServerProcess,
    free_port,
    spawn,
    spawn_asgi_server,
    start_redis,
    stop_all,
    wait_until_healthy,
)
from tests.factories import device_json
from tests.support.links import Link
from tests.support.waiting import eventually

BROKER_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
PASSWORD = "a-long-enough-passphrase"  # of the users `register` makes
METRICS_TOKEN = "dcs-metrics-4e1b"  # the `dcs` fixture's servers' /metrics bearer token


@dataclass
class DataCentre:
    name: str
    index: int
    database: str
    env: dict[str, str]
    log_dir: Path
    url: str = ""
    processes: dict[str, ServerProcess] = field(default_factory=dict)
    link: Link | None = None  # between this data centre and RabbitMQ, with links=True

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws/sync"

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            return list(conn.execute(sql, params or []).fetchall())

    def start(self, role: str) -> ServerProcess:
        """Start (or restart) the `relay` or `replay` process."""
        return self.wait_started(*self.spawn(role))

    def spawn(self, role: str) -> tuple[str, ServerProcess, int]:
        """`start` without the wait (several can boot side by side): the role, the
        process, and where its log stood before it (readiness is a log line)."""
        command = {"relay": "replication_relay", "replay": "replication_replay"}[role]
        log_path = self.log_dir / f"{self.name}-{role}.log"
        before = len(log_path.read_text()) if log_path.exists() else 0
        env = self.env | {"LOG_LEVEL": "INFO"}  # its readiness is a log line
        process = spawn([sys.executable, "manage.py", command], env=env, log_path=log_path)
        return role, ServerProcess(f"{self.name}-{role}", process, log_path), before

    def wait_started(self, role: str, server: ServerProcess, before: int) -> ServerProcess:
        process = server.process
        ready = "shipping to" if role == "relay" else "consuming"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{role} exited early:\n{server.log()}")
            if server.log()[before:].count(ready):
                self.processes[role] = server
                return server
            time.sleep(0.05)
        server.stop()
        raise RuntimeError(f"{role} did not start:\n{server.log()}")

    def kill(self, role: str) -> None:
        """SIGKILL: no chance to finish what it was doing."""
        process = self.processes.pop(role).process
        process.kill()
        process.wait(timeout=10)

    def stop_all(self) -> None:
        stop_all(list(self.processes.values()))
        self.processes.clear()


def _admin_url(env: dict[str, str]) -> str:
    return env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"


def _recreate(admin_url: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')


def _migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT, env=env, check=True, timeout=600,
    )  # fmt: skip


def _migrate_all(envs: list[dict[str, str]]) -> None:
    argv = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
    running = [subprocess.Popen(argv, cwd=ROOT, env=env) for env in envs]
    for process in running:
        if process.wait(timeout=600) != 0:
            raise RuntimeError(f"migrate exited with {process.returncode}")


def broker_through(link: Link) -> str:
    """BROKER_URL, reached through `link`."""
    parts = urlsplit(BROKER_URL)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{link.port}"))


def queues_delete(prefix: str, names: list[str]) -> None:
    with Connection(BROKER_URL) as conn:
        channel: Any = conn.channel()
        for origin in names:
            for destination in names:
                if origin != destination:
                    channel.queue_delete(f"{prefix}.{origin}.{destination}")


# Templates this test process has seen ready.
_migrated_templates: set[str] = set()
_TEMPLATE_LOCK = 0x64637470  # a PostgreSQL advisory lock: one process builds it


def _template(admin: str, env: dict[str, str]) -> str:
    """A migrated database to copy each data centre's from: a fresh database's
    migrations take ~20 s, so one is built for all the suite's processes and kept
    between runs, named after the migrations it holds."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    name = f"wechat_dc_template_{digest.hexdigest()[:12]}"
    if name in _migrated_templates:
        return name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_TEMPLATE_LOCK])
        try:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                _migrated_templates.add(name)
                return name
            # Built under another name and renamed once whole: a process killed
            # mid-build leaves no half-migrated template behind.
            building = f"{name}_building"
            _recreate(admin, building)
            _migrate(env | {"DATABASE_URL": env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{building}"})
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_TEMPLATE_LOCK])
    _migrated_templates.add(name)
    return name


@contextmanager
def datacentres_running(
    *,
    env: dict[str, str],
    log_dir: Path,
    names: tuple[str, ...] = ("sh", "hk"),
    links: bool = False,
    **extra: str,
) -> Iterator[list[DataCentre]]:
    base_db = env["DATABASE_URL"].rsplit("/", 1)[1]
    prefix = f"test-replication-{os.getpid()}"
    ports = {name: free_port() for name in names}
    spec = ";".join(
        f"{name}:{index}=http://127.0.0.1:{ports[name]}"
        for index, name in enumerate(names, start=1)
    )
    redis_servers = [start_redis(log_dir=log_dir) for _ in names]
    centres: list[DataCentre] = []
    broker = urlsplit(BROKER_URL)
    link_of = {
        name: Link(broker.hostname or "127.0.0.1", broker.port or 5672) if links else None
        for name in names
    }
    try:
        admin = _admin_url(env)
        template = _template(admin, env)
        for index, (name, redis_server) in enumerate(zip(names, redis_servers, strict=True), 1):
            database = f"{base_db}_dc_{name}"
            _recreate(admin, database, template=template)
            dc_env = env | extra | {
                "DATABASE_URL": env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{database}",
                "REDIS_URL": f"{redis_server.url}/0",
                "CELERY_BROKER_URL": f"{redis_server.url}/0",
                "CELERY_RESULT_BACKEND": f"{redis_server.url}/0",
                "DATACENTER": name,
                "CAMPUS": f"{name}-a",
                "DATACENTERS": spec,
                "REPLICATION_BROKER_URL": (
                    broker_through(link) if (link := link_of[name]) else BROKER_URL
                ),
                "REPLICATION_QUEUE_PREFIX": prefix,
                "DATACENTER_SECRET": f"{prefix}-secret",
                # The first data centre is the WeChat ID authority; the others call it.
                "WECHAT_ID_AUTHORITY_URL": "" if index == 1 else f"http://127.0.0.1:{ports[names[0]]}",
            }  # fmt: skip
            centre = DataCentre(name, index, database, dc_env, log_dir, link=link_of[name])
            centres.append(centre)
        # Nothing to migrate: moves the id sequences to each DC's block (side by side).
        _migrate_all([centre.env for centre in centres])
        # All started at once, and waited for generously: the machine is shared.
        for centre in centres:
            centre.processes["asgi"] = spawn_asgi_server(
                log_dir=log_dir,
                env=centre.env,
                server="uvicorn",
                name=f"asgi-{centre.name}",
                port=ports[centre.name],
            )
            centre.url = centre.processes["asgi"].url
        # Relays and replay workers side by side (each declares the queues it uses).
        spawned = [
            (centre, centre.spawn(role)) for role in ("replay", "relay") for centre in centres
        ]
        for centre, started in spawned:
            centre.wait_started(*started)
        for centre in centres:
            wait_until_healthy(centre.processes["asgi"])
        yield centres
    finally:
        stop_all(
            [server for centre in centres for server in centre.processes.values()] + redis_servers
        )
        for centre in centres:
            centre.processes.clear()
        for link in link_of.values():
            if link is not None:
                link.close()
        queues_delete(prefix, list(names))


# --- Fixtures and helpers of the tests -------------------------------------------------------


@pytest.fixture(scope="module")
def dcs(live_env: dict[str, str], live_log_dir: Path) -> Iterator[list[DataCentre]]:
    # Each reaches RabbitMQ through a link a test can cut (centre.link.cut()).
    # The metrics token: a test reads what a server's processes counted (/metrics).
    with datacentres_running(
        env=live_env, log_dir=live_log_dir, links=True, MONITORING_METRICS_TOKEN=METRICS_TOKEN
    ) as centres:
        yield centres


def register(dc: DataCentre, nickname: str) -> dict[str, Any]:
    email = f"{nickname.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "nickname": nickname, "device": device_json()}
    response = httpx.post(f"{dc.url}/api/accounts/register", json=body, timeout=30)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    answer["email"] = email
    return answer


def metric_total(dc: DataCentre, name: str) -> float:
    """The sum of a metric's samples named exactly `name` (every label set) in `dc`'s
    ASGI server's /metrics (the `dcs` fixture's servers)."""
    response = httpx.get(
        f"{dc.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    total = 0.0
    for line in response.text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.split("{", 1)[0] == name:
            total += float(value)
    return total


def replicated_user(dc: DataCentre, user_id: int) -> tuple[Any, ...] | None:
    rows = dc.query(
        "SELECT nickname, home_datacenter_id FROM accounts_user WHERE id = %s", [user_id]
    )
    return rows[0] if rows else None


def auth(ticket: str) -> dict[str, str]:
    return {"Authorization": f"Ticket {ticket}"}


def befriend(a: dict[str, Any], a_dc: DataCentre, b: dict[str, Any], b_dc: DataCentre) -> None:
    """a asks b at a's home, b accepts at b's; both sides' copies hold the friendship."""
    a_id, b_id = a["user"]["id"], b["user"]["id"]
    eventually(lambda: replicated_user(a_dc, b_id), what="b replicated to a's home")
    asked = httpx.post(
        f"{a_dc.url}/api/contacts/requests",
        json={"to_user_id": b_id},
        headers=auth(a["ticket"]),
        timeout=30,
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["request"]["id"]
    eventually(
        lambda: b_dc.query("SELECT 1 FROM accounts_friendrequest WHERE id = %s", [request_id]),
        what="the request replicated",
    )
    accepted = httpx.post(
        f"{b_dc.url}/api/contacts/requests/{request_id}/accept",
        json={},
        headers=auth(b["ticket"]),
        timeout=30,
    )
    assert accepted.status_code == 200, accepted.text
    pair = (
        "SELECT count(*) FROM accounts_friendship "
        "WHERE owner_id IN (%s, %s) AND friend_id IN (%s, %s)"
    )
    eventually(
        lambda: a_dc.query(pair, [a_id, b_id, a_id, b_id])[0][0] == 2, what="friends at a's home"
    )
