"""The clients' view of the network (seed 002's smc): each client reports how its
link attempts went (connected or not, over which transport, how long it took) and
the round trips it measured, and they become monitoring metrics, so operators see
what users' networks do, not only what our servers see.

Reports are statistics, not facts to trust: values are clamped, the list bounded
(MONITORING_LINK_REPORT_MAX_ENTRIES), and labels are fixed sets (the transport,
the outcome, the ticket's platform), never what the client names.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from wechat_core.errors import InvalidInput
from wechat_core.metrics import counter, histogram

TRANSPORTS = ("websocket", "longpoll")
MAX_MS = 120_000  # beyond two minutes a figure says nothing more

LINK_CONNECTS = counter(
    "client_link_connects_total",
    "Link attempts clients reported, by transport and outcome (ok, failed).",
    ["transport", "outcome", "platform"],
    process_labels=True,
)
LINK_CONNECT_SECONDS = histogram(
    "client_link_connect_seconds",
    "Time clients took to connect (to the hello, or the first long-poll answer).",
    ["transport", "platform"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
    process_labels=True,
)
LINK_RTT_SECONDS = histogram(
    "client_link_rtt_seconds",
    "Round-trip times clients measured on their link (heartbeat to its ack).",
    ["transport", "platform"],
    buckets=(0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
    process_labels=True,
)


@dataclass(frozen=True, slots=True)
class LinkReport:
    transport: str
    ok: bool | None  # None: no attempt, only the round trips of a link
    connect_ms: int | None = None
    rtt_ms: tuple[int, ...] = ()


def link_stats_record(*, ticket: VerifiedTicket, user_id: int, reports: list[LinkReport]) -> int:
    """Count the reports into the metrics; returns how many were counted."""
    ticket_require(ticket, user_id=user_id)
    limit = settings.MONITORING_LINK_REPORT_MAX_ENTRIES
    if len(reports) > limit:
        raise InvalidInput(f"At most {limit} link reports per request.", details={"limit": limit})
    platform = ticket.platform or "none"
    for report in reports:
        if report.transport not in TRANSPORTS:
            raise InvalidInput(
                f"transport: one of {', '.join(TRANSPORTS)}.", details={"field": "transport"}
            )
        if report.ok is not None:
            LINK_CONNECTS.inc(report.transport, "ok" if report.ok else "failed", platform)
        if report.ok and report.connect_ms is not None:
            LINK_CONNECT_SECONDS.observe(
                report.transport, platform, value=min(max(report.connect_ms, 0), MAX_MS) / 1000
            )
        for rtt in report.rtt_ms:
            LINK_RTT_SECONDS.observe(
                report.transport, platform, value=min(max(rtt, 0), MAX_MS) / 1000
            )
    return len(reports)
