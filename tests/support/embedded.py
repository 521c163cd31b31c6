"""The embedded mode (`make run`) for tests: its environment on a fresh SQLite file,
and management commands run in it as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devtools.processes import ROOT


def embedded_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The embedded defaults (no REDIS_URL), nothing of the developer's environment."""
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    return env | {
        "SECRET_KEY": "embedded-test-key",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_SETTINGS_MODULE": "wechat_core.settings",
        **overrides,
    }


def manage(env: dict[str, str], *args: str) -> str:
    """`manage.py <args>` in that environment; its standard output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout
