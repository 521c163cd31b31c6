"""Our client of the businesses whose coupons are prizes (the protocol is in
docs/shake.md "The business protocol").

One signed POST per delivery attempt, carrying the delivery's idempotency key; the
answer is read into an `Outcome`. Calls go through this process's breaker for the
business's host (wechat_core.breakers, issue 13): timeouts, connection errors and 5xx
count against it, and while it is ejected attempts fail at once without reaching it.
A "too fast" or "no account" answer is the business working as it should and never
counts against it. Nothing here touches the database.

Endpoints are configured by operators, not by users, so no address guard (unlike
developers' servers in publicplatform): a business on a private network is normal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Literal

import httpx

from wechat_core.breakers import Ejected, instance_of, shielded
from wechat_core.http import outbound_client

SERVICE = "shake.business"
MAX_ANSWER_BYTES = 16 * 1024

# "unpaced" is ours, never the business's: no request of its pace came in time.
Result = Literal["delivered", "no_account", "too_fast", "timeout", "failed", "refused", "unpaced"]


@dataclass(frozen=True, slots=True)
class CouponRequest:
    endpoint: str
    secret: str
    timeout: float
    idempotency_key: str
    prize_id: int
    coupon: str
    amount: int
    user_id: int


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    detail: str = ""
    reference: str = ""


_client: httpx.Client | None = None
_lock = threading.Lock()


def _shared_client() -> httpx.Client:
    """One pooled client per process. A client made per call cost each attempt its
    own TLS context (tens of ms of CPU), paid between taking the pace's turn and
    sending: on a busy worker that delay let a second's requests reach the business
    in the next second, above its rate by its own clock."""
    global _client
    with _lock:
        if _client is None:
            _client = outbound_client(
                service=SERVICE,
                trust_env=False,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
        return _client


def signature_of(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 of "<timestamp>.<body>" under the business's secret, hex."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _post(request: CouponRequest) -> httpx.Response:
    body = json.dumps(
        {
            "delivery": request.idempotency_key,
            "prize": request.prize_id,
            "coupon": request.coupon,
            "amount": request.amount,
            "user": str(request.user_id),
        },
        separators=(",", ":"),
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": request.idempotency_key,
        "X-Shake-Timestamp": timestamp,
        "X-Shake-Signature": signature_of(request.secret, timestamp, body),
    }
    return _shared_client().post(
        request.endpoint, content=body, headers=headers, timeout=request.timeout
    )


def _code(response: httpx.Response) -> tuple[str, str, str]:
    try:
        answer = json.loads(response.content[:MAX_ANSWER_BYTES])
    except ValueError:
        return "", "", ""
    if not isinstance(answer, dict):
        return "", "", ""
    return (
        str(answer.get("code", ""))[:40],
        str(answer.get("reference", ""))[:100],
        str(answer.get("message", ""))[:200],
    )


def outcome_of(response: httpx.Response) -> Outcome:
    code, reference, message = _code(response)
    status = response.status_code
    if status == 429 or code == "too_fast":
        return Outcome("too_fast", f"HTTP {status} {message}".strip())
    if code == "no_account":
        return Outcome("no_account", message)
    if 200 <= status < 300 and code == "ok":
        return Outcome("delivered", message, reference)
    if status >= 500:
        return Outcome("failed", f"HTTP {status} {code} {message}".strip())
    return Outcome("refused", f"HTTP {status} {code} {message}".strip())


def coupon_send(request: CouponRequest) -> Outcome:
    """Deliver one coupon; never raises for the business's trouble."""
    try:
        response = shielded(
            SERVICE,
            instance_of(request.endpoint),
            lambda: _post(request),
            failed=lambda r: r.status_code >= 500,
        )
    except Ejected as error:
        return Outcome("failed", f"ejected: {error}"[:300])
    except httpx.TimeoutException as error:
        return Outcome(
            "timeout", f"no answer within {request.timeout:g} s ({type(error).__name__})"
        )
    except httpx.HTTPError as error:
        return Outcome("failed", f"{type(error).__name__}: {error}"[:300])
    return outcome_of(response)
