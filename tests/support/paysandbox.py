"""The payment sandbox (`python -m paysandbox`) as a real process for tests, and its
test-control API (faults, paying an order, reading its notification attempts)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devtools.processes import ServerProcess, spawn

# Short waits between notification attempts, so retries show within a test.
TEST_BACKOFF = "0.3,0.6,1.2,2.4,4.8"
_LISTENING = re.compile(r"paysandbox listening on (http://\S+)")


@dataclass
class Sandbox:
    server: ServerProcess
    url: str

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}/sandbox/{path}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.control("POST", "reset")

    def faults(self, **faults: Any) -> dict[str, Any]:
        return dict(self.control("POST", "faults", faults))

    def pay(self, out_trade_no: str) -> dict[str, Any]:
        return dict(self.control("POST", f"orders/{out_trade_no}/pay"))

    def order(self, out_trade_no: str) -> dict[str, Any]:
        return dict(self.control("GET", f"orders/{out_trade_no}"))

    def transfers(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "state")["transfers"])

    def wait_for_order(
        self, out_trade_no: str, done: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            order = self.order(out_trade_no)
            if done(order):
                return order
            if time.monotonic() > deadline:
                raise AssertionError(f"order {out_trade_no} never got there: {order}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.stop()


def start_paysandbox(*, log_dir: Path, key: str, backoff: str = TEST_BACKOFF) -> Sandbox:
    """A sandbox on a free port, holding `key` (from its environment, as in production)."""
    log_path = log_dir / f"paysandbox-{time.monotonic_ns()}.log"
    argv = [sys.executable, "-m", "paysandbox", "--port", "0", "--notify-backoff", backoff]
    process = spawn(argv, env={"PATH": "/usr/bin:/bin", "PAY_MCH_KEY": key}, log_path=log_path)
    server = ServerProcess("paysandbox", process, log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"paysandbox exited early:\n{server.log()}")
        found = _LISTENING.search(server.log())
        if found:
            server.url = found[1]
            return Sandbox(server=server, url=found[1])
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"paysandbox did not start:\n{server.log()}")
