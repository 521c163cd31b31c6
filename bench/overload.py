"""FastReject under overload: capacity, then 1x, 2x, 3x and 5x of it, with admission
control on and off, side by side (issue 13).

    .venv/bin/python bench/overload.py [--step-seconds 6] [--budget-ms 250] [--rate N]
        [--variants 'name:SETTING=value,...;...'] [--no-off]

One daphne and one Celery worker (bench/_cluster.py, production settings) on
the benchmark database. The load is open-loop (arrivals on a fixed schedule,
whatever the server does, as real clients do) and realistic in mix:

| share | request | business priority |
|---|---|---|
| 50 % | `GET /api/messaging/sync?timeout=0` (a sync with nothing waiting) | SYNC |
| 30 % | `POST /api/messaging/send` (1:1 text) | SEND |
| 15 % | `GET /api/accounts/me` (profile: "everything else") | OTHER |
| 5 % | `POST /api/accounts/login` (argon2) | LOGIN |

plus a fixed population of `--pollers` long-polls (`timeout=5`), each asking
again as soon as it is answered (their first polls spread over the first 5 s);
their answers are counted apart (share served).
A poller obeys refusals as a real client does (docs/protocol.md §5): a 429 or 503
waits its `Retry-After` (plus up to half as much at random for 503 `overloaded`)
before the next poll, and other failures back off exponentially with jitter; a
benchmark that polled again sooner would offer load no real client offers.

The admitted p99 is that of sync, send and other: a login is an argon2 hash
(hundreds of milliseconds of CPU by design), so its p99 is reported apart.
A request's latency counts from its scheduled arrival, so time spent waiting
for a free client connection is not hidden (no coordinated omission); a client
gives up after `--give-up-seconds` (counted as failed). Goodput: 2xx answers
per second. Capacity: the highest offered rate (searched by doubling then
bisecting, with admission control off) at which the p99 of answered requests
stays within `--budget-ms` and at least 99.5 % of requests succeed.

`--timing` starts each step's server with REQUEST_TIMING_FILE
(wechat_core/reqtiming.py) and reports, per step, where the admitted requests
spent their time (STAGES: the bench's queue, the worker slot, the hop to the
request's thread, the database pool and queries, Celery, the view, the way back)
and how much of it the server process (a garbage collection, a late wake-up of
a sleeping thread) or the machine (a sleeping process woke late) stood still:
docs/performance.md, overload run 8.

Prints JSON: the capacity search, then per multiplier and mode: offered and
goodput (req/s and share of capacity), p99 of admitted (non-503) answers,
share of each class served, 503s, give-ups.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _cluster import BENCH_PASSWORD, Cluster, make_pairs
from _setup import emit

MIX = (("sync", 0.50), ("send", 0.30), ("other", 0.15), ("login", 0.05))
CONNECTIONS = 192
POLL_SECONDS = 5  # the long-polls' timeout
# Every bench client comes from 127.0.0.1 and repeats the same few requests: the
# traffic guard (monitoring/trafficguard.py) would block them as one looping client.
SERVER_ENV = {"MONITORING_GUARD_ENABLED": "false", "DEVICES_PER_USER_MAX": "1000000"}


@dataclass
class Outcomes:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # admitted answers
    status: Counter[tuple[str, int]] = field(default_factory=Counter)  # 0: gave up / error
    offered: Counter[str] = field(default_factory=Counter)


def _request(method: str, path: str, host: str, headers: dict[str, str], body: Any) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened after a give-up or an error.
    `retry_after` is the last answer's Retry-After (seconds), or None."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.retry_after: float | None = None

    async def exchange(self, raw: bytes, timeout: float) -> int:
        self.retry_after = None
        try:
            return await asyncio.wait_for(self._exchange(raw), timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return 0

    async def _exchange(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        closing = False
        for line in head.split(b"\r\n"):
            lowered = line.lower()
            if lowered.startswith(b"content-length:"):
                length = int(line[15:])
            elif lowered.startswith(b"connection:") and b"close" in lowered:
                closing = True
            elif lowered.startswith(b"retry-after:"):
                with contextlib.suppress(ValueError):
                    self.retry_after = max(0.0, float(line[12:]))
        if length:
            await self.reader.readexactly(length)
        if closing:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def poll_wait(status: int, retry_after: float | None, failures: int, rng: random.Random) -> float:
    """Seconds a long-poll client waits before its next poll (docs/protocol.md §5): a
    refusal (429, 503) its Retry-After, plus up to half as much at random for an
    overloaded server (so refused clients do not all come back at once); another
    failure (a give-up, an error) a backoff of min(10 s, 0.2 s * 2^n) * random[0, 1),
    as the clients' reconnect loop; an answer none."""
    if status == 200:
        return 0.0
    if status in (429, 503):
        seconds = retry_after if retry_after is not None else 1.0
        return seconds * (1 + rng.random() / 2) if status == 503 else seconds
    return min(10.0, 0.2 * 2.0**failures) * rng.random()


class Workload:
    def __init__(
        self, url: str, pairs: list[Any], login_emails: list[str], timing: bool = False
    ) -> None:
        parts = urlsplit(url)
        # --timing: each request carries X-Bench-Id, and `sent` keeps
        # (id, kind, scheduled, written, answered, status) for the server's stages.
        self.timing = timing
        self.sent: list[tuple[str, str, float, float, float, int]] = []
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.hostport = f"{self.host}:{self.port}"
        self.pairs = pairs
        self.login_emails = login_emails
        self._ids = itertools.count()

    def build(self, kind: str) -> tuple[str, bytes]:
        n = next(self._ids)
        return str(n), self._build(kind, n)

    def _build(self, kind: str, n: int) -> bytes:
        sender, _, conversation = self.pairs[n % len(self.pairs)]
        auth = {"Authorization": f"Ticket {sender.ticket}"}
        if self.timing:
            auth["X-Bench-Id"] = str(n)
        if kind == "sync":
            return _request("GET", "/api/messaging/sync?timeout=0&limit=1&key=1000000000",
                            self.hostport, auth, None)  # fmt: skip
        if kind == "send":
            body = {"conversation": conversation, "client_msg_id": f"o{n}-{time.time_ns()}",
                    "content": {"text": f"overload {n}"}}  # fmt: skip
            return _request("POST", "/api/messaging/send", self.hostport, auth, body)
        if kind == "other":
            return _request("GET", "/api/accounts/me", self.hostport, auth, None)
        device = {"platform": "other", "client_version": "3.0.0", "name": "overload"}
        email = self.login_emails[n % len(self.login_emails)]
        body = {"identifier": email, "password": BENCH_PASSWORD, "device": device}
        bench_id = {"X-Bench-Id": str(n)} if self.timing else {}
        return _request("POST", "/api/accounts/login", self.hostport, bench_id, body)

    async def run(self, rate: float, seconds: float, give_up: float, pollers: int) -> Outcomes:
        """Offer `rate` requests/s for `seconds`, open-loop."""
        out = Outcomes()
        queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        rng = random.Random(7)
        kinds = [k for k, _ in MIX]
        weights = [w for _, w in MIX]
        started = time.perf_counter()
        end = started + seconds

        async def arrivals() -> None:
            at = started
            while at < end:
                at += rng.expovariate(rate)
                kind = rng.choices(kinds, weights)[0]
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                out.offered[kind] += 1
                queue.put_nowait((at, kind))

        async def client() -> None:
            connection = Connection(self.host, self.port)
            while True:
                at, kind = await queue.get()
                bench_id, raw = self.build(kind)
                written = time.perf_counter()
                left = give_up - (written - at)
                status = await connection.exchange(raw, left) if left > 0 else 0
                if self.timing:
                    self.sent.append((bench_id, kind, at, written, time.perf_counter(), status))
                if status and status != 503:
                    out.latencies.setdefault(kind, []).append(time.perf_counter() - at)
                out.status[kind, status] += 1
                queue.task_done()

        async def poller(n: int) -> None:
            connection = Connection(self.host, self.port)
            ticket = self.pairs[n % len(self.pairs)][1].ticket
            path = f"/api/messaging/sync?timeout={POLL_SECONDS}&limit=1&key=1000000000"
            raw = _request("GET", path, self.hostport, {"Authorization": f"Ticket {ticket}"}, None)
            jitter = random.Random(n)
            failures = 0
            # Spread over one poll's wait, as real long-pollers are: started together,
            # 20 polls (their ticket checks and reads) queued at once at the step's
            # start and at every timeout after it, the slowest requests of a step
            # (docs/performance.md, overload run 8).
            await asyncio.sleep(jitter.random() * POLL_SECONDS)
            while time.perf_counter() < end:
                status = await connection.exchange(raw, POLL_SECONDS + give_up)
                out.status["long-poll", status] += 1
                out.offered["long-poll"] += 1
                wait = poll_wait(status, connection.retry_after, failures, jitter)
                failures = 0 if status == 200 else failures + 1
                if wait:
                    await asyncio.sleep(min(wait, max(0.0, end - time.perf_counter())))
            connection.close()

        workers = [asyncio.create_task(client()) for _ in range(CONNECTIONS)]
        polls = [asyncio.create_task(poller(n)) for n in range(pollers)]
        await arrivals()
        # Requests still queued or in flight get their give-up time, no more.
        with_bound = time.perf_counter() + give_up + 0.5
        while queue._unfinished_tasks and time.perf_counter() < with_bound:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        for task in workers:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        await asyncio.gather(*workers, return_exceptions=True)
        return out


def _p99(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] * 1000 if samples else 0.0
    return statistics.quantiles(samples, n=100)[98] * 1000


# A process that only sleeps 10 ms at a time, noting each wake-up 20 ms or more late:
# when it is late, the machine had no CPU for it (the run queue), whatever the server did.
MACHINE_PROBE = """
import json, sys, time
with open(sys.argv[1], "a", buffering=1) as out:
    while True:
        expected = time.perf_counter() + 0.01
        time.sleep(0.01)
        woke = time.perf_counter()
        if woke - expected >= 0.02:
            out.write(json.dumps({"kind": "machine", "start": expected, "end": woke}) + "\\n")
"""

# A request's path through the server, in order (wechat_core/reqtiming.py): the gap
# before each mark is the stage named beside it.
STAGES = (
    ("client_queue", "scheduled: no free bench connection, or the bench's own loop"),
    ("to_server", "written by the bench, until the server's ASGI wrapper ran"),
    ("slot_wait", "waiting for an ADMISSION_HTTP_WORKERS slot"),
    ("to_thread", "slot taken, until the first middleware ran in the request's thread"),
    ("db_wait", "waiting for a database pool connection"),
    ("db_query", "in database queries"),
    ("publish", "publishing Celery tasks"),
    ("view_other", "the rest of the view and middleware (Python, Redis)"),
    ("to_loop", "view done, until the answer was handed to the server"),
    ("to_client", "handed to the server, until the bench read it"),
)


def _stages(
    client: tuple[str, str, float, float, float, int], server: dict[str, Any]
) -> dict[str, float]:
    """One request's time (ms) in each of STAGES; {} when the server lacks a mark."""
    _, _, at, written, answered, _ = client
    if any(server.get(k) is None for k in ("arrived", "thread", "done", "sent")):
        return {}
    arrived, thread, done, sent = (float(server[k]) for k in ("arrived", "thread", "done", "sent"))
    slot = server.get("slot", arrived)  # the login pool and long-polls take no slot
    inside = done - thread
    db_wait = server.get("db_wait", 0.0)
    db_query = server.get("db_query", 0.0)
    publish = server.get("publish", 0.0)
    parts = {
        "client_queue": written - at,
        "to_server": arrived - written,
        "slot_wait": slot - arrived,
        "to_thread": thread - slot,
        "db_wait": db_wait,
        "db_query": db_query,
        "publish": publish,
        "view_other": inside - db_wait - db_query - publish,
        "to_loop": sent - done,
        "to_client": answered - sent,
    }
    return {k: round(v * 1000, 1) for k, v in parts.items()}


def stage_breakdown(
    sent: list[tuple[str, str, float, float, float, int]], path: str, started: float,
    budget_ms: float,
) -> dict[str, Any]:  # fmt: skip
    """Where the admitted sync/send/other requests spent their time: the median
    request's stages beside the mean stages of those over the budget, the slowest
    ten one by one, and how much of each request's time the server process
    (`tick`: a sleeping thread woke late; `gc`: a garbage collection) or the whole
    machine (`machine`: a process that only sleeps woke late) stood still."""
    server: dict[str, dict[str, Any]] = {}
    stalls: dict[str, list[tuple[float, float]]] = {"gc": [], "tick": [], "machine": []}
    for name in (path, path + ".machine"):
        with contextlib.suppress(FileNotFoundError), open(name) as lines:
            for line in lines:
                record = json.loads(line)
                if record.get("kind") in stalls:
                    if record["end"] >= started:
                        stalls[record["kind"]].append((record["start"], record["end"]))
                elif record.get("id"):
                    server[record["id"]] = record

    def overlap(kind: str, start: float, end: float) -> float:
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in stalls[kind]) * 1000

    rows = []
    for request in sent:
        bench_id, kind, at, _, answered, status = request
        if kind == "login" or not status or status == 503 or bench_id not in server:
            continue
        stages = _stages(request, server[bench_id])
        if stages:
            total = round((answered - at) * 1000, 1)
            record = server[bench_id]
            # How much of its time in the server the process (or the machine) stood still.
            inside = {
                f"{stall}_stall_ms": round(overlap(stall, record["arrived"], record["sent"]), 1)
                for stall in stalls
            }
            rows.append({"id": bench_id, "kind": kind, "at_s": round(at - started, 2),
                         "total_ms": total, **stages, **inside,
                         "queries": record.get("queries", 0)})  # fmt: skip
    rows.sort(key=lambda row: row["total_ms"])
    slow = [row for row in rows if row["total_ms"] > budget_ms]

    columns = [k for k, _ in STAGES] + [f"{stall}_stall_ms" for stall in stalls]

    def mean_of(group: list[dict[str, Any]]) -> dict[str, float]:
        return (
            {k: round(statistics.fmean(r[k] for r in group), 1) for k in columns} if group else {}
        )

    def cause(row: dict[str, Any]) -> str:
        """What most of an over-budget request's excess coincided with."""
        excess = 0.5 * (row["total_ms"] - budget_ms)
        if row["gc_stall_ms"] >= excess:
            return "server garbage collection"
        if row["machine_stall_ms"] >= excess:
            return "machine: no CPU for any process"
        if row["tick_stall_ms"] >= excess:
            return "server process stalled (GIL or CPU), machine not"
        return "none of these: a queue or a wait"

    def stall_summary(spans: list[tuple[float, float]]) -> dict[str, float]:
        lengths = [(b - a) * 1000 for a, b in spans]
        return {"count": len(lengths), "total_ms": round(sum(lengths), 1),
                "max_ms": round(max(lengths, default=0.0), 1)}  # fmt: skip

    return {
        "stages": dict(STAGES),
        "timed_requests": len(rows),
        "over_budget": len(slow),
        "median_request": rows[len(rows) // 2] if rows else {},
        "mean_over_budget": mean_of(slow),
        "mean_all": mean_of(rows),
        "over_budget_by_cause": dict(Counter(cause(row) for row in slow)),
        "stalls": {kind: stall_summary(spans) for kind, spans in stalls.items()},
        "slowest": rows[-10:][::-1],
    }


def summarise(out: Outcomes, seconds: float, capacity: float | None) -> dict[str, Any]:
    kinds = [k for k, _ in MIX]
    total = sum(out.offered[k] for k in kinds)
    ok = sum(n for (k, s), n in out.status.items() if k in kinds and 200 <= s < 300)
    # Login is argon2 by design (hundreds of ms of CPU): its latency is reported
    # apart, and the budget holds for the rest of the mix.
    admitted = [x for k in kinds if k != "login" for x in out.latencies.get(k, [])]
    result: dict[str, Any] = {
        "offered_per_second": round(total / seconds, 1),
        "goodput_per_second": round(ok / seconds, 1),
        "admitted_p99_ms": round(_p99(admitted), 1),
        "p99_ms_by_class": {k: round(_p99(out.latencies.get(k, [])), 1) for k in kinds},
        "refused_503": sum(n for (k, s), n in out.status.items() if k in kinds and s == 503),
        "gave_up_or_error": sum(n for (k, s), n in out.status.items() if k in kinds and s == 0),
        "served_share": {
            k: round(
                sum(n for (kk, s), n in out.status.items() if kk == k and 200 <= s < 300)
                / max(1, out.offered[k]),
                4,
            )
            for k in [*kinds, "long-poll"]
        },
        "statuses": {f"{k} {s}": n for (k, s), n in sorted(out.status.items())},
    }
    if capacity:
        result["goodput_share_of_capacity"] = round(ok / seconds / capacity, 3)
    return result


def measure(
    server_env: dict[str, str], label: str, rate: float, args: argparse.Namespace,
    pairs: list[Any], emails: list[str],
) -> dict[str, Any]:  # fmt: skip
    """One step on a fresh server: a level that shed the step before (and recovers
    slowly at low rates) must not carry over."""
    timing_file = ""
    if args.timing:
        timing_file = str(Path(tempfile.mkdtemp(prefix="overload-timing-")) / "requests.jsonl")
        server_env = {**server_env, "REQUEST_TIMING_FILE": timing_file}
    with _started(server_env) as cluster:
        workload = Workload(cluster.url, pairs, emails, timing=args.timing)
        asyncio.run(workload.run(3, 2, args.give_up_seconds, 0))  # warm up, well below capacity
        workload.sent.clear()
        started = time.perf_counter()
        load_before = os.getloadavg()[0]
        # The machine's own stalls, beside the server's: a process that only sleeps.
        probe = (
            subprocess.Popen([sys.executable, "-c", MACHINE_PROBE, timing_file + ".machine"])
            if args.timing
            else None
        )
        out = asyncio.run(workload.run(rate, args.step_seconds, args.give_up_seconds, args.pollers))
        if probe is not None:
            probe.terminate()
            probe.wait()
        summary = summarise(out, args.step_seconds, None)
    row = {"mode": label, "rate": rate, "load_average_1m": round(load_before, 2), **summary}
    if args.timing:
        row["load_average_1m_after"] = round(os.getloadavg()[0], 2)
        row["stages"] = stage_breakdown(workload.sent, timing_file, started, args.budget_ms)
    print(json.dumps(row), file=sys.stderr)  # progress, and what a run cut short measured
    return row


@contextlib.contextmanager
def _started(server_env: dict[str, str]) -> Iterator[Cluster]:
    """A started cluster; on a busy shared machine a server may miss its 30 s to
    become healthy, so it gets three tries."""
    for attempt in range(3):
        cluster = Cluster("daphne", **server_env)
        try:
            cluster.__enter__()
        except RuntimeError:
            cluster.__exit__()
            if attempt == 2:
                raise
            continue
        try:
            yield cluster
        finally:
            cluster.__exit__()
        return


def find_capacity(
    args: argparse.Namespace, pairs: list[Any], emails: list[str]
) -> tuple[float, list[dict[str, Any]]]:
    """Doubling, then bisecting, with admission control off: one server, rising rates."""
    steps: list[dict[str, Any]] = []
    with _started({"ADMISSION_ENABLED": "false", **SERVER_ENV}) as cluster:
        workload = Workload(cluster.url, pairs, emails)
        asyncio.run(workload.run(3, 2, args.give_up_seconds, 0))

        def good(rate: float) -> bool:
            out = asyncio.run(
                workload.run(rate, args.step_seconds, args.give_up_seconds, args.pollers)
            )
            summary = summarise(out, args.step_seconds, None)
            ok: bool = summary["admitted_p99_ms"] <= args.budget_ms and (
                summary["goodput_per_second"] >= 0.995 * summary["offered_per_second"]
            )
            load = round(os.getloadavg()[0], 2)
            steps.append({"rate": rate, "within_budget": ok, "load_average_1m": load, **summary})
            print(json.dumps(steps[-1]), file=sys.stderr)
            return ok

        low, high = 0.0, args.start_rate
        while good(high) and high < 5000:
            low, high = high, high * 2
        for _ in range(3):
            middle = (low + high) / 2
            low, high = (middle, high) if good(middle) else (low, middle)
    return low, steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step-seconds", type=float, default=6.0)
    parser.add_argument("--give-up-seconds", type=float, default=2.0)
    parser.add_argument("--budget-ms", type=float, default=250.0)
    parser.add_argument("--pollers", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.0, help="capacity, skipping the search")
    parser.add_argument("--multipliers", default="1,2,3,5")
    parser.add_argument("--start-rate", type=float, default=10.0)
    parser.add_argument(
        "--variants",
        default="",
        help="more FastReject-on modes, measured in the same run: "
        "'name:SETTING=value,SETTING=value;name2:...'",
    )
    parser.add_argument("--no-off", action="store_true", help="skip the FastReject-off steps")
    parser.add_argument(
        "--timing",
        action="store_true",
        help="time each request's stages on the server (REQUEST_TIMING_FILE) and report "
        "where the slowest admitted ones waited",
    )
    args = parser.parse_args()
    from _setup import configure

    configure()
    pairs = make_pairs(16)
    emails = _login_users(8)
    search: list[dict[str, Any]] = []
    if args.rate:
        capacity = args.rate
    else:
        capacity, search = find_capacity(args, pairs, emails)
    multipliers = [float(m) for m in args.multipliers.split(",")]
    rates = [round(capacity * m, 1) for m in multipliers]
    table: dict[str, dict[str, Any]] = {}
    modes: list[tuple[str, dict[str, str]]] = [("fastreject_on", {"ADMISSION_ENABLED": "true"})]
    for variant in filter(None, args.variants.split(";")):
        name, _, assignments = variant.partition(":")
        overrides = dict(pair.split("=", 1) for pair in assignments.split(",") if pair)
        modes.append((f"fastreject_on_{name}", {"ADMISSION_ENABLED": "true", **overrides}))
    if not args.no_off:
        modes.append(("fastreject_off", {"ADMISSION_ENABLED": "false"}))
    for m, rate in zip(multipliers, rates, strict=True):
        for label, mode_env in modes:
            env = {**mode_env, **SERVER_ENV}
            row = measure(env, label, rate, args, pairs, emails)
            row["goodput_share_of_capacity"] = round(row["goodput_per_second"] / capacity, 3)
            table.setdefault(f"{m:g}x", {})[label] = row
    emit({
        "benchmark": "overload",
        "budget_ms": args.budget_ms,
        "step_seconds": args.step_seconds,
        "give_up_seconds": args.give_up_seconds,
        "mix": dict(MIX),
        "long_pollers": args.pollers,
        "capacity_per_second": capacity,
        "capacity_search": search,
        "results": table,
    })  # fmt: skip


def _login_users(count: int) -> list[str]:
    from _cluster import _user

    return [_user("login").email for _ in range(count)]


if __name__ == "__main__":
    main()
