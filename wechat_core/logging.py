"""A logging filter that scrubs tickets and credentials from every log record.

Tickets must never reach logs (DESIGN.md §5). Code never logs them on purpose;
this filter is the safety net for what slips through (exception texts, reprs,
third-party libraries), and it sits on every handler we configure.
"""

from __future__ import annotations

import logging
import re

# Ticket format: t1.<ticket id>.<43 url-safe base64 characters> (see accounts.tickets).
TICKET_PATTERN = re.compile(r"t1\.\d+\.[A-Za-z0-9_-]{20,}")
CREDENTIAL_PATTERN = re.compile(
    r"(?i)((?:authorization|password|secret|ticket|access_token)[\"']?\s*[:=]\s*[\"']?)(?:ticket\s+)?[^\s\"',}]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    text = TICKET_PATTERN.sub(REDACTED, text)
    return CREDENTIAL_PATTERN.sub(lambda match: match.group(1) + REDACTED, text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
