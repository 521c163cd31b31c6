"""Fail fast, with instructions, when PostgreSQL or Redis is not reachable.

`make test` and `make serve` run this first: `python -m wechat_core.servicecheck`.
It reads DATABASE_URL and REDIS_URL from the environment, creates the database
if PostgreSQL answers but the database does not exist yet, and exits non-zero
naming the service that is down and the command that starts it.
"""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlparse

POSTGRES_HINT = (
    "Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start "
    "(or your system's service manager), or set DATABASE_URL to a reachable server."
)
REDIS_HINT = (
    "Start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 "
    "(or your system's service manager), or set REDIS_URL to a reachable server."
)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check_postgres(url: str) -> str | None:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql", "pgsql"):
        return f"DATABASE_URL must point at PostgreSQL here, got {parsed.scheme or 'nothing'}."
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5432
    if not _reachable(host, port):
        return f"PostgreSQL is not reachable at {host}:{port}. {POSTGRES_HINT}"
    import psycopg

    database = parsed.path.lstrip("/")
    try:
        with psycopg.connect(url.replace(f"/{database}", "/postgres", 1), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [database]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{database}"')
    except psycopg.Error as error:
        return f"PostgreSQL at {host}:{port} refused us: {error}".strip()
    return None


def check_redis(url: str) -> str | None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    if not _reachable(host, port):
        return f"Redis is not reachable at {host}:{port}. {REDIS_HINT}"
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as error:
        return f"Redis at {host}:{port} did not answer PING: {error}"
    return None


def main() -> int:
    problems = []
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url:
        problems.append("DATABASE_URL is not set.")
    elif problem := check_postgres(database_url):
        problems.append(problem)
    if not redis_url:
        problems.append("REDIS_URL is not set.")
    elif problem := check_redis(redis_url):
        problems.append(problem)
    for problem in problems:
        print(f"servicecheck: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
