"""Shared set-up for benchmarks: production settings on PostgreSQL and Redis.

Benchmarks use their own database (`wechat_bench`) and Redis db 13, so they
never touch development or test data. Override with BENCH_DATABASE_URL and
BENCH_REDIS_URL.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def configure() -> dict[str, str]:
    """Point this process at the benchmark database, migrate it, set Django up."""
    env = {
        "DATABASE_URL": os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wechat_bench"
        ),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        # The production layout wants a real key; every process of a run shares this one.
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "DJANGO_SETTINGS_MODULE": "wechat_core.settings",
        "LOG_LEVEL": "WARNING",
        "REGISTRATIONS_PER_IP_PER_HOUR": "1000000",
    }
    os.environ.update(env)
    check = subprocess.run([sys.executable, "-m", "wechat_core.servicecheck"], cwd=ROOT)
    if check.returncode:
        sys.exit(check.returncode)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return {**os.environ, **env}


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }


def emit(result: dict[str, Any]) -> None:
    print(json.dumps({"machine": machine(), **result}, indent=2))
