"""Tickets and credentials scrubbed from every log record, in every process.

Tickets must never reach logs (DESIGN.md §5). Code never logs them on purpose;
this is the safety net for what slips through: exception texts, reprs, URLs in
access logs (`/cgi-bin/token?...&secret=...`), httpx's request lines (a
follower's openid in a push URL), third-party libraries.

The scrubbing happens when a record is made (a log-record factory), not in a
handler: whatever handlers a process ends up with keep it. Celery replaces the
root handler when a worker starts (and uvicorn brings its own), so a filter on
our handler alone left workers' logs unscrubbed. Settings' LOGGING_CONFIG
(`configure`) installs the factory wherever Django configures logging: the
ASGI servers, Celery workers and beat, management commands. The filter stays
for handlers configured outside Django.
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import Callable, Mapping
from typing import Any

# Ticket format: t1.<ticket id>.<43 url-safe base64 characters> (see accounts.tickets).
TICKET_PATTERN = re.compile(r"t1\.\d+\.[A-Za-z0-9_-]{20,}")
# A name whose value is secret, in `name=value` (query strings, forms), `name: value`
# (headers) or `"name": "value"` (JSON, reprs). Names ending in one of these words
# (access_token, appsecret, client_secret, ...), whole words otherwise.
_NAMES = (
    r"[\w-]*(?:secret|password|passwd|token|ticket|secret_key|api_?key|aes_?key|mch_?key)"
    r"|authorization|cookie|sessionid|openid"
)
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
REDACTED = "[redacted]"
# Unquoted: an optional scheme word (`Bearer abc`), then up to a separator of
# its own kind (`&` in a query string, `;` between cookies, the end of a JSON
# value); never what was redacted already (records may pass here twice).
_BARE = r"(?:(?:bearer|basic|ticket|token|digest)\s+)?(?!\[redacted\])[^\s\"',;&}\])]+"
CREDENTIAL_PATTERN = re.compile(
    rf"(?i)(?<![\w-])(?P<name>{_NAMES})(?P<sep>[\"']?\s*[:=]\s*)(?P<value>{_QUOTED}|{_BARE})"
)
# The tail of a WeChat Pay string to sign, `...&key=<PAY_MCH_KEY>` (a bare `key`
# elsewhere is a sync key, not a secret; merchant keys are long and hold letters).
SIGN_KEY_PATTERN = re.compile(r"(?i)(&key=)(?=[^\s&\"']*[a-z])[^\s&\"']{16,}")
# An authorization scheme and its credentials, wherever they appear.
SCHEME_PATTERN = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")


def _redact_value(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match['name']}{match['sep']}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    text = CREDENTIAL_PATTERN.sub(_redact_value, text)
    text = SIGN_KEY_PATTERN.sub(lambda match: f"{match[1]}{REDACTED}", text)
    text = SCHEME_PATTERN.sub(lambda match: f"{match[1]} {REDACTED}", text)
    return TICKET_PATTERN.sub(REDACTED, text)


def redact_record(record: logging.LogRecord) -> None:
    """Scrub a record in place.

    String arguments are scrubbed one by one, which keeps the record's shape for
    formatters that read `args` (uvicorn's access log); if the message still
    holds a secret (in the format string, or a non-string argument's repr) it
    is replaced by its scrubbed text. An exception's traceback is formatted
    now, scrubbed, and kept in `exc_text`, which formatters print instead.
    """
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in args)
    elif isinstance(args, Mapping):
        record.args = {
            key: redact(value) if isinstance(value, str) else value for key, value in args.items()
        }
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it when it formats the record
        message = None
    if message is not None:
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_redaction() -> None:
    """Make every record of this process scrubbed when it is created (idempotent)."""
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    if getattr(previous, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: the redaction first, then settings.LOGGING."""
    install_redaction()
    logging.config.dictConfig(config)
