"""FastReject for websocket frames and new websocket connections, and the tier
heartbeats carry.

The SYNC link calls `frame_refusal` for every readable frame before handling it:
None admits it; otherwise the answer is the protocol's `throttle` frame with
`reason: "overloaded"` (and `code`, `message`), and the link stays open.

`connect_refusal` is asked before a new link does anything (before its ticket is
checked): a connection is a sync (business priority SYNC) ranked by its ticket's
id, so when the level is below the sync class a reconnect storm (seed 001) is
turned away at the cost of a handshake: the `throttle` frame with `id` null,
then close CLOSE_OVERLOADED (4013), and the client stays
away for `retry_after`.

`tier()` goes into every `heartbeat.ack`, so clients slow down before they are
refused.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from wechat_core.admission.controller import controller
from wechat_core.admission.http import OVERLOADED_MESSAGE, caller_of
from wechat_core.admission.metrics import ADMISSION_REQUESTS
from wechat_core.admission.priorities import Business, frame_priority, user_priority
from wechat_core.admission.probes import probes_start

# Overloaded, come back after retry_after. RFC 6455's own "Try Again Later" (1013) is
# one daphne's websocket library refuses to send (it closes with 1011 instead), so the
# code is in the application range, beside 4029 (the traffic guard).
CLOSE_OVERLOADED = 4013


def frame_refusal(frame_type: object, user_id: int) -> dict[str, Any] | None:
    """None to handle the frame; else the throttle frame (without its `id`) to answer."""
    business = frame_priority(frame_type if isinstance(frame_type, str) else "")
    return _refusal("websocket", business, user_priority(user_id))


def connect_refusal(scope: dict[str, Any]) -> dict[str, Any] | None:
    """None to open the link; else the throttle frame to send before closing it
    with CLOSE_OVERLOADED. No database, no Redis, no thread."""
    refusal = _refusal("websocket_connect", Business.SYNC, user_priority(caller_of(scope)))
    if refusal is not None:
        # It answers no request (the connection itself is refused), and a client
        # must stay away at least a second.
        refusal |= {"id": None, "retry_after": max(1, refusal["retry_after"])}
    return refusal


def _refusal(kind: str, business: Business, user: int) -> dict[str, Any] | None:
    if not settings.ADMISSION_ENABLED:
        return None
    probes_start()
    decision = controller().admit(business, user)
    outcome = "admitted" if decision.admitted else "refused"
    ADMISSION_REQUESTS.inc(kind, business.name.lower(), outcome)
    if decision.admitted:
        return None
    return {
        "type": "throttle",
        "tier": decision.tier,
        "retry_after": decision.retry_after,
        "reason": "overloaded",
        "code": "overloaded",
        "message": OVERLOADED_MESSAGE,
    }


def tier() -> int:
    """The throttle tier to tell clients now (0 when admission control is off)."""
    return controller().tier() if settings.ADMISSION_ENABLED else 0
