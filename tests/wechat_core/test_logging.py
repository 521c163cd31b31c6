"""Tickets never reach the logs: the redaction filter, and a real server's output."""

from __future__ import annotations

import logging
import sys

import httpx
import pytest

from tests.factories import device_json, make_user
from tests.support.processes import ServerProcess
from wechat_core.logging import RedactSecretsFilter, redact

TOKEN = "t1.42.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd"


def render(record: logging.LogRecord) -> str:
    RedactSecretsFilter().filter(record)
    return logging.Formatter("%(message)s").format(record)


def test_filter__ticket_in_message_or_arguments__is_redacted() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "got %s and %r", (TOKEN, {"t": TOKEN}), None
    )
    assert TOKEN not in render(record)
    assert "[redacted]" in render(record)


def test_filter__ticket_in_an_exception__is_redacted() -> None:
    try:
        raise ValueError(f"bad ticket {TOKEN}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    assert TOKEN not in render(record)


@pytest.mark.parametrize(
    "line",
    [
        "Authorization: Ticket somethingsecret",
        '{"password": "hunter2-hunter2"}',
        "password=hunter2-hunter2&next=/",
    ],
)
def test_redact__credentials_in_headers_and_bodies__are_removed(line: str) -> None:
    assert "somethingsecret" not in redact(line)
    assert "hunter2" not in redact(line)


def test_redact__ordinary_text__is_left_alone() -> None:
    text = "user 42 logged in from 10.0.0.1 on device t1-phone"
    assert redact(text) == text


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_server_logs__after_logins_requests_and_errors__contain_no_ticket(
    asgi_servers: list[ServerProcess],
) -> None:
    # given: a user logging in and using tickets, good and bad, through a real server
    server = asgi_servers[0]
    make_user(email="logme@example.com")
    body = {"identifier": "logme@example.com", "password": "correct-horse-battery",
            "device": device_json()}  # fmt: skip
    token = httpx.post(f"{server.url}/api/accounts/login", json=body).json()["ticket"]
    headers = {"Authorization": f"Ticket {token}"}
    httpx.get(f"{server.url}/api/accounts/me", headers=headers)
    httpx.get(f"{server.url}/api/accounts/devices/999999", headers=headers)  # 404 is logged
    httpx.patch(f"{server.url}/api/accounts/me", headers=headers, content=b"{not json")
    tampered = token[:-4] + "AAAA"
    httpx.get(f"{server.url}/api/accounts/me", headers={"Authorization": f"Ticket {tampered}"})
    httpx.post(f"{server.url}/api/accounts/logout", headers=headers)
    httpx.get(f"{server.url}/api/accounts/me", headers=headers)  # revoked: 401 is logged
    # then
    log = server.log()
    assert "/api/accounts/me" in log  # the server did log these requests
    secret = token.split(".")[2]
    assert secret not in log
    assert tampered.split(".")[2] not in log
    assert "correct-horse-battery" not in log
