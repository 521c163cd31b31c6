"""A minimal HTTP/1.1 keep-alive load generator on asyncio streams.

httpx spends about a millisecond of CPU per request, and on a two-core machine
the load generator competes with the server; this client spends a few tens of
microseconds, so what the benchmarks measure is the server.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    def summary(self) -> dict[str, float | int]:
        quantiles = (
            statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 1 else [0.0] * 99
        )
        return {
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_second": round(self.requests / self.seconds, 1),
            "p50_ms": round(quantiles[49] * 1000, 2),
            "p99_ms": round(quantiles[98] * 1000, 2),
        }


async def _one_connection(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors += 1
    finally:
        writer.close()
    return errors


async def load(
    url: str, *, headers: dict[str, str], seconds: float, connections: int
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    errors = await asyncio.gather(
        *(_one_connection(host, port, request, deadline, latencies) for _ in range(connections))
    )
    return LoadResult(len(latencies), sum(errors), time.perf_counter() - started, latencies)
