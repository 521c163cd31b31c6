"""Businesses that deliver coupons, as real local HTTP servers (docs/shake.md "The
business protocol"): the outside systems of the coupon payout, which the tests run
instead of mocking.

One server plays one business: it checks each request's signature, grants each
idempotency key once (a repeat answers `ok` with `duplicate`), answers `no_account`
for users without an account (when it keeps a list), `too_fast` (HTTP 429) past its
own capacity in a wall-clock second, and 500 while it is failing. It logs every
arrival with its own clock: the tests measure the rate from this log.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shake.business import signature_of


@dataclass(frozen=True)
class Arrival:
    at: float  # time.time() when the request arrived
    key: str
    user: str
    answer: str  # ok, duplicate, no_account, too_fast, failing, bad_signature


@dataclass
class BusinessServer:
    secret: str
    capacity_per_second: int | None = None
    delay: float = 0.0
    accounts: set[str] | None = None  # None: everyone has an account
    failing: bool = False
    arrivals: list[Arrival] = field(default_factory=list)
    granted: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/coupons"

    def open_account(self, user_id: int) -> None:
        with self.lock:
            assert self.accounts is not None
            self.accounts.add(str(user_id))

    def set_failing(self, failing: bool) -> None:
        with self.lock:
            self.failing = failing

    def log(self) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def per_second(self) -> dict[int, int]:
        """Arrivals in each wall-clock second, by the business's own clock."""
        return dict(sorted(Counter(int(a.at) for a in self.log()).items()))

    def answer(self, arrived: float, body: bytes, headers: Any) -> tuple[int, dict[str, Any]]:
        signature = signature_of(self.secret, headers.get("X-Shake-Timestamp", ""), body)
        request = json.loads(body or b"{}")
        key, user = str(request.get("delivery", "")), str(request.get("user", ""))
        reply: dict[str, Any]
        with self.lock:
            if (
                headers.get("X-Shake-Signature") != signature
                or headers.get("Idempotency-Key") != key
            ):
                verdict, status, reply = "bad_signature", 401, {"code": "bad_signature"}
            elif self.failing:
                verdict, status, reply = "failing", 500, {"code": "system_error"}
            elif self.capacity_per_second is not None and (
                sum(
                    1 for a in self.arrivals if int(a.at) == int(arrived) and a.answer != "too_fast"
                )
                >= self.capacity_per_second
            ):
                verdict, status, reply = "too_fast", 429, {"code": "too_fast"}
            elif self.accounts is not None and user not in self.accounts:
                verdict, status, reply = "no_account", 200, {"code": "no_account"}
            else:
                verdict = "duplicate" if self.granted[key] else "ok"
                self.granted[key] += 1 if verdict == "ok" else 0
                status = 200
                reply = {"code": "ok", "reference": f"ref-{key}", "duplicate": verdict != "ok"}
            self.arrivals.append(Arrival(arrived, key, user, verdict))
        if self.delay:
            time.sleep(self.delay)  # the business is slow to answer (its behaviour)
        return status, reply

    def start(self) -> BusinessServer:
        business = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()  # the request line and headers are in
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, reply = business.answer(arrived, body, self.headers)
                payload = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the caller gave up (its timeout): a slow business's fate

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
