"""What starting one of our Python processes costs (an ASGI server, a Celery worker, a
management command all begin by importing the project), with bytecode caches and
without them, side by side in one run.

"Without" is what a machine with PYTHONDONTWRITEBYTECODE set and packages installed
uncompiled pays on every start: the caches are looked for under an empty
PYTHONPYCACHEPREFIX, so every module is compiled again (none is written).

    .venv/bin/python bench/process_start.py [--runs 7]

Prints JSON: per mode, wall and CPU seconds (median, min, max) of
`django.setup()` plus importing the ASGI application, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = "import django; django.setup(); import wechat_core.asgi"


def _one(env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROGRAM],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _summary(samples: list[tuple[float, float]]) -> dict[str, Any]:
    walls, cpus = [s[0] for s in samples], [s[1] for s in samples]
    return {
        "wall_s": {"median": round(statistics.median(walls), 3), "min": round(min(walls), 3),
                   "max": round(max(walls), 3)},
        "cpu_s": {"median": round(statistics.median(cpus), 3), "min": round(min(cpus), 3),
                  "max": round(max(cpus), 3)},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    base = dict(os.environ) | {
        "DJANGO_SETTINGS_MODULE": "wechat_core.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DOTENV_FILE": "",
        "REDIS_URL": "",
        "DATABASE_URL": "sqlite:///:memory:",
    }
    cached_env = base | {"PYTHONDONTWRITEBYTECODE": ""}
    _one(cached_env)  # writes the caches the "cached" runs read
    with tempfile.TemporaryDirectory() as empty:
        uncached_env = base | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
        cached: list[tuple[float, float]] = []
        uncached: list[tuple[float, float]] = []
        for _ in range(args.runs):  # interleaved: both see the same machine
            cached.append(_one(cached_env))
            uncached.append(_one(uncached_env))
    result = {
        "what": "django.setup() + import wechat_core.asgi in a new process",
        "runs": args.runs,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "with_caches": _summary(cached),
        "without_caches": _summary(uncached),
    }
    result["cpu_ratio_without_to_with"] = round(
        result["without_caches"]["cpu_s"]["median"] / result["with_caches"]["cpu_s"]["median"], 2
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
