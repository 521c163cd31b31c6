"""CPU time spent by each kind of process during a benchmark, from /proc (Linux).

    with CpuMeter(server_pid=cluster.pid) as meter:
        ... the workload ...
    meter.per_event_ms(messages)  # {"asgi server": 2.1, "postgresql": 1.4, ...}

On a machine where the load generator, the server, PostgreSQL and Redis share
the cores, this says what a message costs in total and so what bounds the rate.
"""

from __future__ import annotations

import os
from types import TracebackType

_TICK = os.sysconf("SC_CLK_TCK")


_parents: dict[int, int] = {}


def _processes() -> dict[int, tuple[str, float]]:
    found: dict[int, tuple[str, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat, open(f"/proc/{name}/cmdline") as cmd:
                fields = stat.read().rsplit(")", 1)[1].split()
                command = cmd.read().replace("\0", " ")
        except OSError:  # the process ended meanwhile
            continue
        found[int(name)] = (command, (int(fields[11]) + int(fields[12])) / _TICK)
        _parents[int(name)] = int(fields[1])
    return found


class CpuMeter:
    def __init__(self, *, server_pid: int) -> None:
        self.server_pid = server_pid
        self.seconds: dict[str, float] = {}

    def _kind(self, pid: int, command: str) -> str | None:
        if pid == self.server_pid or _parents.get(pid) == self.server_pid:
            return "asgi server"  # with its worker processes (WEB_CONCURRENCY, granian)
        if pid == os.getpid():
            return "load generator"
        if command.startswith("postgres"):
            return "postgresql"
        if "redis-server" in command:
            return "redis"
        if "celery" in command:
            return "celery worker"
        return None

    def __enter__(self) -> CpuMeter:
        self._before = _processes()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for pid, (command, seconds) in _processes().items():
            kind_of = self._kind(pid, command)
            if kind_of is not None:
                spent = seconds - self._before.get(pid, (command, 0.0))[1]
                self.seconds[kind_of] = self.seconds.get(kind_of, 0.0) + spent

    def per_event_ms(self, events: int) -> dict[str, float]:
        costs = {kind: round(s * 1000 / max(1, events), 3) for kind, s in self.seconds.items()}
        costs["total"] = round(sum(self.seconds.values()) * 1000 / max(1, events), 3)
        return costs
