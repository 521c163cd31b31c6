"""A real Matrix Synapse homeserver on PostgreSQL, for side-by-side benchmarks.

This module owns everything needed to run the same workloads against Synapse
that the benchmarks run against our server:

* `ensure_synapse_installed()` installs `matrix-synapse[postgres]` into its own
  venv under `var/bench-synapse/venv` (never into the project's venv: Synapse's
  pinned dependencies conflict with ours) and returns that venv's python.
* `SynapseServer` drops and recreates a PostgreSQL database, writes a
  homeserver config (server name `bench.local`, a loopback client listener,
  every rate limit lifted, presence and URL previews off, WARNING logs to a
  file), starts `python -m synapse.app.homeserver` and stops it again. It
  exposes `base_url`, `pid` (for RSS sampling) and `log_path`.
* `SynapseClient` is an async client on one pooled `httpx.AsyncClient`
  (HTTP/1.1 keep-alive) shared by any number of users, each request carrying
  its own access token: shared-secret registration, room creation with many
  members, sending text messages and `/sync` catch-up that pages back through
  limited timelines so it returns every message since a token.

Usage::

    with SynapseServer() as server:
        async with server.client() as client:
            alice = await client.register("alice", "pw")

Nothing here is imported from Synapse: it runs in a subprocess from its own
venv and is driven over HTTP only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
SYNAPSE_HOME = ROOT / "var" / "bench-synapse"
SYNAPSE_VENV = SYNAPSE_HOME / "venv"

# Tested with 1.163.2. Rate-limit config keys move between releases (see
# RATE_LIMITS), so stay inside the current major and above the tested minor.
SYNAPSE_REQUIREMENT = "matrix-synapse[postgres]>=1.163,<2"

SERVER_NAME = "bench.local"

# Effectively infinite: Synapse's token buckets never empty at these numbers.
_UNLIMITED: dict[str, float] = {"per_second": 1_000_000.0, "burst_count": 1_000_000_000.0}

# Every rate limiter that Synapse 1.163 reads from its config
# (synapse/config/ratelimiting.py), each lifted to `_UNLIMITED`.
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_registration_token_validity": _UNLIMITED,
    "rc_login": {
        "address": _UNLIMITED,
        "account": _UNLIMITED,
        "failed_attempts": _UNLIMITED,
    },
    "rc_admin_redaction": _UNLIMITED,
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_key_requests": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
    "rc_invites": {
        "per_room": _UNLIMITED,
        "per_user": _UNLIMITED,
        "per_issuer": _UNLIMITED,
    },
    "rc_third_party_invite": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_delayed_event_mgmt": _UNLIMITED,
    "rc_room_creation": _UNLIMITED,
    "rc_reports": _UNLIMITED,
    "rc_user_directory": _UNLIMITED,
    "rc_profile": _UNLIMITED,
    "rc_federation": {
        "window_size": 1000,
        "sleep_limit": 1_000_000,
        "sleep_delay": 0,
        "reject_limit": 1_000_000,
        "concurrent": 1_000_000,
    },
    "federation_rr_transactions_per_room_per_second": 1_000_000,
    "remote_media_download_per_second": "1000G",
    "remote_media_download_burst_count": "1000G",
}

# Synapse's /messages serves at most this many events per page.
_MESSAGES_PAGE = 1000


def _log(message: str) -> None:
    print(f"[synapse-harness] {message}", file=sys.stderr, flush=True)


def _child_env() -> dict[str, str]:
    """The environment for Synapse's processes, without the caller's Python settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _synapse_importable(python: Path) -> bool:
    if not python.exists():
        return False
    check = subprocess.run(
        [str(python), "-c", "import synapse, psycopg2"],
        capture_output=True,
        env=_child_env(),
    )
    return check.returncode == 0


def synapse_version(python: Path | None = None) -> str:
    """The version of Synapse installed in the harness venv (installing it if needed)."""
    python = python or ensure_synapse_installed()
    out = subprocess.run(
        # Not synapse.__version__: it appends the git branch of whatever repository
        # the venv sits in (ours), e.g. "1.163.2 (b=main,d74c0af)".
        [str(python), "-c", "import importlib.metadata as m; print(m.version('matrix-synapse'))"],
        capture_output=True,
        text=True,
        check=True,
        env=_child_env(),
    )
    return out.stdout.strip()


def ensure_synapse_installed(
    venv: Path = SYNAPSE_VENV, requirement: str = SYNAPSE_REQUIREMENT
) -> Path:
    """Create `venv` and install Synapse into it once; return the venv's python.

    Idempotent and safe to call from concurrent processes (a file lock guards
    the install). A venv in which Synapse already imports is reused as it is.
    Progress goes to stderr.
    """
    python = venv / "bin" / "python"
    if _synapse_importable(python):
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _synapse_importable(python):
            return python
        started = time.monotonic()
        base = shutil.which("python3") or sys.executable
        _log(f"creating venv {venv} with {base}")
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True, stdout=sys.stderr)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
        _log("upgrading pip")
        subprocess.run(
            [*pip, "install", "-q", "--upgrade", "pip"],
            check=True,
            stdout=sys.stderr,
            env=_child_env(),
        )
        _log(f"installing {requirement}")
        subprocess.run(
            [*pip, "install", "-q", requirement],
            check=True,
            stdout=sys.stderr,
            env=_child_env(),
        )
        if not _synapse_importable(python):
            raise RuntimeError(f"Synapse is still not importable from {python} after install")
        _log(f"installed in {time.monotonic() - started:.1f}s")
    return python


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SynapseServer:
    """One Synapse homeserver process on a fresh PostgreSQL database.

    `start()` drops and recreates `database` (UTF8, C collation, from
    template0, as Synapse requires), writes the config and signing key into a
    new directory under `var/bench-synapse/`, launches the homeserver and waits
    until `/_matrix/client/versions` answers. `stop()` terminates it and, unless
    `keep_dir` is set, removes the directory (it is kept when start-up fails,
    so `log_path` can be read). Usable as a context manager.

    `extra_config` is merged over the generated config (top-level keys
    replace). Useful knobs, both left at Synapse's defaults here:
    `{"bcrypt_rounds": 4}` makes registration cheap (the default 12 costs
    about 0.15 s of CPU per user), and `{"filter_timeline_limit": 10000}`
    lifts the server's cap of 100 events per room in one /sync timeline.
    """

    def __init__(
        self,
        database: str = "synapse_bench",
        *,
        pg_host: str = "127.0.0.1",
        pg_port: int = 5432,
        pg_user: str = "postgres",
        pg_password: str | None = None,
        port: int | None = None,
        python: Path | None = None,
        extra_config: dict[str, Any] | None = None,
        keep_dir: bool = False,
        startup_timeout: float = 180.0,
    ) -> None:
        self.database = database
        self.pg_host = pg_host
        self.pg_port = pg_port
        self.pg_user = pg_user
        self.pg_password = pg_password
        self.requested_port = port
        self.python = python
        self.extra_config = dict(extra_config or {})
        self.keep_dir = keep_dir
        self.startup_timeout = startup_timeout
        self.server_name = SERVER_NAME
        self.registration_shared_secret = secrets.token_hex(32)
        self.port = 0
        self.workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._console: Any = None

    # -- public properties -------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("Synapse has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("Synapse is not running")
        return self._process.pid

    @property
    def log_path(self) -> Path:
        """Synapse's own log (WARNING and above)."""
        return self._dir / "homeserver.log"

    @property
    def console_path(self) -> Path:
        """The process's stdout and stderr (start-up failures land here)."""
        return self._dir / "console.log"

    @property
    def config_path(self) -> Path:
        return self._dir / "homeserver.yaml"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise RuntimeError("Synapse has not been started")
        return self.workdir

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("Synapse is already running")
        python = self.python or ensure_synapse_installed()
        self.python = python
        self.port = self.requested_port or _free_port()
        SYNAPSE_HOME.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"run-{self.database}-", dir=SYNAPSE_HOME))
        self.recreate_database()
        self._write_config()
        env = _child_env()
        keys = subprocess.run(
            [*self._command(python), "--generate-keys"],
            cwd=self._dir,
            capture_output=True,
            text=True,
            env=env,
        )
        if keys.returncode:
            raise RuntimeError(f"synapse --generate-keys failed:\n{keys.stdout}{keys.stderr}")
        self._console = open(self.console_path, "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            self._command(python),
            cwd=self._dir,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop(remove_dir=False)
            raise

    def _command(self, python: Path) -> list[str]:
        return [str(python), "-m", "synapse.app.homeserver", "-c", str(self.config_path)]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.base_url}/_matrix/client/versions"
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while True:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"Synapse exited with {self._process.returncode} during start-up; "
                        f"see {self.console_path} and {self.log_path}:\n{self._tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if http.get(url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"Synapse did not answer {url} within {self.startup_timeout}s; "
                        f"see {self.console_path}:\n{self._tail()}"
                    )
                time.sleep(0.1)

    def _tail(self, lines: int = 30) -> str:
        out = []
        for path in (self.console_path, self.log_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self, *, remove_dir: bool = True) -> None:
        """Terminate Synapse (SIGTERM, then SIGKILL after 30 s). Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._console is not None:
            self._console.close()
            self._console = None
        if remove_dir and not self.keep_dir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- database and config -----------------------------------------------

    def recreate_database(self) -> None:
        """Drop and recreate the Synapse database with the encoding Synapse requires."""
        import psycopg
        from psycopg import sql

        conninfo = psycopg.conninfo.make_conninfo(
            host=self.pg_host,
            port=self.pg_port,
            user=self.pg_user,
            dbname="postgres",
            **({"password": self.pg_password} if self.pg_password else {}),
        )
        name = sql.Identifier(self.database)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            conn.execute(
                sql.SQL(
                    "CREATE DATABASE {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
                    "TEMPLATE template0 OWNER {}"
                ).format(name, sql.Identifier(self.pg_user))
            )

    def config(self) -> dict[str, Any]:
        """The homeserver config (JSON is valid YAML, so it is written as JSON)."""
        workdir = self._dir
        db_args: dict[str, Any] = {
            "user": self.pg_user,
            "host": self.pg_host,
            "port": self.pg_port,
            "database": self.database,
            "cp_min": 5,
            "cp_max": 10,
        }
        if self.pg_password:
            db_args["password"] = self.pg_password
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"http://127.0.0.1:{self.port}/",
            "pid_file": str(workdir / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "psycopg2", "args": db_args},
            "log_config": str(workdir / "log_config.yaml"),
            "media_store_path": str(workdir / "media_store"),
            "signing_key_path": str(workdir / "signing.key"),
            "registration_shared_secret": self.registration_shared_secret,
            "macaroon_secret_key": secrets.token_hex(32),
            "form_secret": secrets.token_hex(32),
            "enable_registration": False,
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "encryption_enabled_by_default_for_room_type": "off",
            "allow_guest_access": False,
            **RATE_LIMITS,
        }
        config.update(self.extra_config)
        return config

    def _write_config(self) -> None:
        workdir = self._dir
        log_config = {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                    "%(request)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        (workdir / "log_config.yaml").write_text(json.dumps(log_config, indent=2))
        self.config_path.write_text(json.dumps(self.config(), indent=2))

    # -- client ------------------------------------------------------------

    def client(self, max_connections: int = 32, timeout: float = 120.0) -> SynapseClient:
        return SynapseClient(
            self.base_url,
            self.registration_shared_secret,
            max_connections=max_connections,
            timeout=timeout,
        )


# -- client API ----------------------------------------------------------------


@dataclass(frozen=True)
class SynapseUser:
    user_id: str
    access_token: str
    device_id: str


@dataclass(frozen=True)
class SyncMessage:
    room_id: str
    event_id: str
    sender: str
    body: str
    origin_server_ts: int


@dataclass
class SyncResult:
    """One /sync, with limited timelines already filled in from /messages.

    `messages` holds the `m.room.message` events of joined rooms, oldest first
    within each room. `paged_rooms` lists the rooms whose timeline was limited
    and was completed with /messages, and `requests` counts HTTP requests made
    (the /sync plus every /messages page).
    """

    next_batch: str
    messages: list[SyncMessage] = field(default_factory=list)
    invited_room_ids: list[str] = field(default_factory=list)
    paged_rooms: list[str] = field(default_factory=list)
    requests: int = 1


class SynapseError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:500]}")
        self.status = status
        self.body = body


def _message(room_id: str, event: dict[str, Any]) -> SyncMessage | None:
    if event.get("type") != "m.room.message":
        return None
    content = event.get("content") or {}
    return SyncMessage(
        room_id=room_id,
        event_id=event["event_id"],
        sender=event["sender"],
        body=str(content.get("body", "")),
        origin_server_ts=int(event.get("origin_server_ts", 0)),
    )


def _room_path(room_id: str) -> str:
    return quote(room_id, safe="")


class SynapseClient:
    """An async Matrix client for many users over one keep-alive connection pool.

    Each call takes the acting `SynapseUser` and sends its access token in the
    Authorization header of that request, so one client serves a whole
    benchmark population. Use as `async with`, or call `aclose()`.
    """

    def __init__(
        self,
        base_url: str,
        registration_shared_secret: str,
        *,
        max_connections: int = 32,
        timeout: float = 120.0,
    ) -> None:
        self.base_url = base_url
        self._secret = registration_shared_secret.encode()
        self.http = httpx.AsyncClient(
            base_url=base_url,
            http1=True,
            http2=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=httpx.Timeout(timeout),
            trust_env=False,  # loopback only: never route through a configured proxy
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        user: SynapseUser | None = None,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {user.access_token}"} if user else {}
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout)
        response = await self.http.request(
            method, path, headers=headers, json=json_body, params=params, **extra
        )
        if response.status_code >= 300:
            raise SynapseError(method, path, response.status_code, response.text)
        data: dict[str, Any] = response.json()
        return data

    async def register(self, username: str, password: str, admin: bool = False) -> SynapseUser:
        """Register `username` with the shared-secret admin API (nonce + HMAC-SHA1)."""
        path = "/_synapse/admin/v1/register"
        nonce = (await self._request("GET", path))["nonce"]
        message = "\x00".join((nonce, username, password, "admin" if admin else "notadmin"))
        mac = hmac.new(self._secret, message.encode(), hashlib.sha1)
        body = {
            "nonce": nonce,
            "username": username,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        data = await self._request("POST", path, json_body=body)
        return SynapseUser(
            user_id=data["user_id"],
            access_token=data["access_token"],
            device_id=data.get("device_id", ""),
        )

    async def join(self, user: SynapseUser, room_id: str) -> None:
        await self._request(
            "POST", f"/_matrix/client/v3/rooms/{_room_path(room_id)}/join", user, json_body={}
        )

    async def create_room(
        self,
        creator: SynapseUser,
        members: list[SynapseUser],
        *,
        name: str | None = None,
        join_concurrency: int = 8,
    ) -> str:
        """Create a private room, invite `members` in the same call, then join them.

        Joins run concurrently, at most `join_concurrency` at a time (Synapse
        serialises membership changes per room anyway, so more does not help).
        Returns the room id once every member has joined.
        """
        invitees = [m for m in members if m.user_id != creator.user_id]
        body: dict[str, Any] = {
            "preset": "private_chat",
            "visibility": "private",
            "invite": [m.user_id for m in invitees],
        }
        if name:
            body["name"] = name
        data = await self._request("POST", "/_matrix/client/v3/createRoom", creator, json_body=body)
        room_id: str = data["room_id"]
        gate = asyncio.Semaphore(join_concurrency)

        async def join(member: SynapseUser) -> None:
            async with gate:
                await self.join(member, room_id)

        await asyncio.gather(*(join(m) for m in invitees))
        return room_id

    async def send_text(self, user: SynapseUser, room_id: str, body: str, txn_id: str) -> str:
        """Send an `m.text` message; returns its event id. `txn_id` must be unique per user."""
        path = (
            f"/_matrix/client/v3/rooms/{_room_path(room_id)}/send/m.room.message/"
            f"{quote(txn_id, safe='')}"
        )
        data = await self._request("PUT", path, user, json_body={"msgtype": "m.text", "body": body})
        event_id: str = data["event_id"]
        return event_id

    @staticmethod
    def sync_filter(limit: int | None) -> dict[str, Any]:
        """Keep joined rooms' message timelines; drop presence, account data, receipts."""
        timeline: dict[str, Any] = {"types": ["m.room.message"]}
        if limit is not None:
            timeline["limit"] = limit
        return {
            "presence": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
            "room": {
                "timeline": timeline,
                "state": {"lazy_load_members": True},
                "ephemeral": {"not_types": ["*"]},
                "account_data": {"not_types": ["*"]},
            },
        }

    async def sync(
        self,
        user: SynapseUser,
        since: str | None,
        timeout_ms: int,
        limit: int | None = None,
    ) -> SyncResult:
        """GET /sync and return every `m.room.message` in joined rooms since `since`.

        `limit` is the per-room timeline limit put in the filter (None keeps
        Synapse's default of 10). Synapse caps it at the server's
        `filter_timeline_limit` (100 unless the server was started with
        `extra_config={"filter_timeline_limit": N}`), answers an incremental
        sync with at most that many events per room and marks the timeline
        `limited` when there were more; for each such room this pages backwards with
        `/rooms/{id}/messages?dir=b&from=<prev_batch>&to=<since>` (1,000
        events a page, Synapse's maximum) until the gap is closed, so a
        catch-up returns ALL messages since `since`, each once, oldest first
        per room. Paging stops only when a page comes back empty or without
        `end` (Synapse still returns `end` on the page that reaches `to`, so
        each limited room costs one extra, empty /messages request; this is
        what a spec-following client does). On an initial sync (`since`
        None) limited timelines are not paged: that would walk the rooms'
        whole history.

        `timeout_ms` is the long-poll timeout; with pending events Synapse
        answers at once.
        """
        params: dict[str, Any] = {
            "timeout": str(timeout_ms),
            "filter": json.dumps(self.sync_filter(limit), separators=(",", ":")),
            "set_presence": "offline",
        }
        if since is not None:
            params["since"] = since
        data = await self._request(
            "GET",
            "/_matrix/client/v3/sync",
            user,
            params=params,
            timeout=timeout_ms / 1000 + 60,
        )
        result = SyncResult(next_batch=data["next_batch"])
        rooms = data.get("rooms") or {}
        result.invited_room_ids = list((rooms.get("invite") or {}).keys())
        for room_id, room in (rooms.get("join") or {}).items():
            timeline = room.get("timeline") or {}
            events = [
                m for e in timeline.get("events") or [] if (m := _message(room_id, e)) is not None
            ]
            if since is not None and timeline.get("limited") and timeline.get("prev_batch"):
                older, pages = await self._page_back(user, room_id, timeline["prev_batch"], since)
                result.paged_rooms.append(room_id)
                result.requests += pages
                seen = {m.event_id for m in events}
                events = [m for m in older if m.event_id not in seen] + events
            result.messages.extend(events)
        return result

    async def _page_back(
        self, user: SynapseUser, room_id: str, from_token: str, to_token: str
    ) -> tuple[list[SyncMessage], int]:
        """Messages between `to_token` and `from_token` in `room_id`, oldest first."""
        path = f"/_matrix/client/v3/rooms/{_room_path(room_id)}/messages"
        event_filter = json.dumps(
            {"types": ["m.room.message"], "lazy_load_members": True}, separators=(",", ":")
        )
        newest_first: list[SyncMessage] = []
        pages = 0
        token: str | None = from_token
        while token:
            data = await self._request(
                "GET",
                path,
                user,
                params={
                    "dir": "b",
                    "from": token,
                    "to": to_token,
                    "limit": str(_MESSAGES_PAGE),
                    "filter": event_filter,
                },
            )
            pages += 1
            chunk = data.get("chunk") or []
            newest_first.extend(m for e in chunk if (m := _message(room_id, e)) is not None)
            next_token = data.get("end")
            if not chunk or next_token is None or next_token == token:
                break
            token = next_token
        newest_first.reverse()
        return newest_first, pages


@contextlib.contextmanager
def running_synapse(**kwargs: Any) -> Iterator[SynapseServer]:
    """`with running_synapse(database=...) as server:` — a started SynapseServer."""
    server = SynapseServer(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
