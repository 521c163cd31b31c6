"""`make test` stops at once, naming the service that is down and how to start it."""

from __future__ import annotations

import os
import subprocess
import sys

from devtools.processes import ROOT


def servicecheck(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "wechat_core.servicecheck"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_servicecheck__both_up__succeeds_quietly() -> None:
    result = servicecheck(
        DATABASE_URL=os.environ["DATABASE_URL"], REDIS_URL=os.environ["REDIS_URL"]
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_servicecheck__postgres_down__names_it_and_how_to_start_it() -> None:
    result = servicecheck(
        DATABASE_URL="postgres://postgres@127.0.0.1:1/wechat", REDIS_URL=os.environ["REDIS_URL"]
    )
    assert result.returncode == 1
    assert "PostgreSQL is not reachable at 127.0.0.1:1" in result.stderr
    assert "pg_ctlcluster" in result.stderr
    assert "Redis" not in result.stderr


def test_servicecheck__redis_down__names_it_and_how_to_start_it() -> None:
    result = servicecheck(
        DATABASE_URL=os.environ["DATABASE_URL"], REDIS_URL="redis://127.0.0.1:1/0"
    )
    assert result.returncode == 1
    assert "Redis is not reachable at 127.0.0.1:1" in result.stderr
    assert "redis-server" in result.stderr
    assert "PostgreSQL" not in result.stderr
