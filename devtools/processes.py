"""Real server processes for the integration tests and the benchmarks: daphne/uvicorn and
Celery workers.

Each runs the production settings module against the test database and the
test Redis, in its own process, so tests see what a deployment would.
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, even killed (Linux)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def spawn(
    argv: list[str], *, env: dict[str, str] | None, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start a server process whose output goes to `log_path`; it dies with us."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_environment(database_name: str | None, **overrides: str) -> dict[str, str]:
    """The environment of a server process: the test environment, production settings."""
    from django.conf import settings

    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "wechat_core.settings"
    if database_name is not None:
        base = env["DATABASE_URL"].rsplit("/", 1)[0]
        env["DATABASE_URL"] = f"{base}/{database_name}"
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def collect_static(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT, env=env, check=True, timeout=120,
    )  # fmt: skip


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def stop_all(servers: list[ServerProcess], timeout: float = 10.0) -> None:
    """Stop several at once: each is asked to stop (SIGTERM) before any is waited for,
    so their shutdowns overlap (one after the other, a fixture's teardown took their sum)."""
    running = [server for server in servers if server.process.poll() is None]
    for server in running:
        server.process.terminate()
    deadline = time.monotonic() + timeout
    for server in running:
        try:
            server.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


def start_asgi_server(
    *,
    log_dir: Path,
    env: dict[str, str],
    server: str = "daphne",
    name: str = "asgi",
    port: int | None = None,
) -> ServerProcess:
    server_process = spawn_asgi_server(
        log_dir=log_dir, env=env, server=server, name=name, port=port
    )
    wait_until_healthy(server_process)
    return server_process


def spawn_asgi_server(
    *,
    log_dir: Path,
    env: dict[str, str],
    server: str = "daphne",
    name: str = "asgi",
    port: int | None = None,
) -> ServerProcess:
    """start_asgi_server without the wait: several servers can boot side by side."""
    port = port or free_port()
    log_path = log_dir / f"{name}-{port}.log"
    # The production command line (wechat_core.serve reads the settings), on a test port.
    argv = [sys.executable, "-m", "wechat_core.serve"]
    serve_env = env | {"ASGI_SERVER": server, "HOST": "127.0.0.1", "PORT": str(port)}
    process = spawn(argv, env=serve_env, log_path=log_path)
    return ServerProcess(name, process, log_path, url=f"http://127.0.0.1:{port}")


def wait_until_healthy(server: ServerProcess, timeout: float = 300.0) -> None:
    # Generous: with other work on the two cores (load average 20-28) a start took 30-150 s.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} did not become healthy:\n{server.log()}")


def procfile_workers() -> list[str]:
    """The Procfile's Celery worker processes (`worker`, `webhook`, …), in its order."""
    names = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if command.split()[:1] == ["celery"] and " worker " in f"{command} ":
            names.append(name.strip())
    return names


def procfile_argv(process: str, env: dict[str, str]) -> list[str]:
    """The Procfile's command line of `process`, its `${VAR:-default}` filled from `env`
    as the shell would, and `celery` run by this interpreter."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            expanded = re.sub(
                r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), command
            )
            argv = shlex.split(expanded)
            if argv[0] == "celery":
                argv = [sys.executable, "-m", "celery", *argv[1:]]
            return argv
    raise KeyError(f"no process {process!r} in the Procfile")


def start_celery_worker(
    *,
    log_dir: Path,
    env: dict[str, str],
    queues: str = "",
    beat: bool = False,
    name: str = "worker",
    include: str = "",
    procfile: str = "",
    pool: str = "threads",
    concurrency: int = 4,
) -> ServerProcess:
    """A Celery worker: the Procfile's process `procfile` (its pool, concurrency and
    queues, as `make serve` runs it), or else one on `queues` with `pool`
    (`prefork` is the Procfile's worker's) and `concurrency`."""
    worker = spawn_celery_worker(
        log_dir=log_dir, env=env, queues=queues, beat=beat, name=name, include=include,
        procfile=procfile, pool=pool, concurrency=concurrency,
    )  # fmt: skip
    wait_until_ready(worker)
    return worker


def spawn_celery_worker(
    *,
    log_dir: Path,
    env: dict[str, str],
    queues: str = "",
    beat: bool = False,
    name: str = "worker",
    include: str = "",
    procfile: str = "",
    pool: str = "threads",
    concurrency: int = 4,
) -> ServerProcess:
    """start_celery_worker without the wait: several processes can boot side by side."""
    log_path = log_dir / f"celery-{name}.log"
    hostname = f"test-{name}-{os.getpid()}@localhost"
    if procfile:
        argv = [arg for arg in procfile_argv(procfile, env) if not arg.startswith("--hostname")]
    else:
        argv = [sys.executable, "-m", "celery", "-A", "wechat_core", "worker", "--loglevel=INFO",
                f"--queues={queues}", f"--pool={pool}", f"--concurrency={concurrency}"]  # fmt: skip
    # Start-up speed only (no cluster handshakes); pools and queues stay as given.
    argv += [f"--hostname={hostname}", "--without-mingle", "--without-gossip"]
    if beat:
        argv += ["--beat", f"--schedule={log_dir / f'beat-{name}'}"]
    if include:  # task modules outside the apps (tests' own tasks)
        argv += [f"--include={include}"]
    process = spawn(argv, env=env, log_path=log_path)
    return ServerProcess("celery", process, log_path, extra={"hostname": hostname})


def wait_until_ready(worker: ServerProcess) -> None:
    """Until a spawned Celery worker consumes."""
    process, hostname = worker.process, worker.extra["hostname"]
    # The worker logs "<hostname> ready." once it consumes (asking it over the broker
    # is unreliable here: a CELERY_BROKER_URL variable overrides any app's broker).
    deadline = time.monotonic() + 180  # generous: several may boot at once on two cores
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{worker.log()}")
        if f"{hostname} ready." in worker.log():
            return
        time.sleep(0.1)
    worker.stop()
    raise RuntimeError(f"celery worker did not become ready:\n{worker.log()}")


def wait_until_idle(worker: ServerProcess, timeout: float = 90.0) -> None:
    """Wait until every task the worker received has finished (from its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = worker.log()
        finished = log.count("] succeeded in ") + log.count("] raised ") + log.count("] retry:")
        if finished >= log.count("] received"):
            return
        time.sleep(0.05)
    raise RuntimeError("the celery worker did not become idle")


def start_redis(*, log_dir: Path, port: int | None = None) -> ServerProcess:
    """A private Redis (nothing on disk), which a test may stop and restart."""
    port = port or free_port()
    log_path = log_dir / f"redis-{port}.log"
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no"]  # fmt: skip
    process = spawn(argv, env=None, log_path=log_path)
    server = ServerProcess("redis", process, log_path, url=f"redis://127.0.0.1:{port}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"redis did not start:\n{server.log()}")
