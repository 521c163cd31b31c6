"""Tickets and credentials never reach the logs: the redaction, and the output of
real servers (their access logs included) and of a real Celery worker."""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.devservers import serve
from devtools.processes import (
    ServerProcess,
    start_asgi_server,
    start_celery_worker,
    wait_until_idle,
)
from tests.factories import device_json, make_user
from wechat_core.logging import RedactSecretsFilter, install_redaction, redact, redact_record

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
        "Authorization: Bearer somethingsecret",
        "sent it with Bearer somethingsecret",
        "{'authorization': 'Bearer somethingsecret'}",
        '{"password": "correct hunter2 battery staple"}',
        "{'client_secret': 'some thing secret'}",
        "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=somethingsecret",
        "GET /cgi-bin/user/info?access_token=somethingsecret&openid=hunter2",
        "GET /api/sync?ticket=somethingsecret HTTP/1.1",
        'HTTP Request: POST http://dev.example/wx?nonce=2&openid=hunter2 "HTTP/1.1 200 OK"',
        "Cookie: sessionid=somethingsecret; csrftoken=hunter2",
        f"ticket: {TOKEN} password=hunter2",
        "PAY_MCH_KEY=hunter2-merchant-key",
        "appid=wx1&body=test&mch_id=10000100&key=hunter2-merchant-key",
    ],
)
def test_redact__credentials_in_headers_urls_and_bodies__are_removed(line: str) -> None:
    cleaned = redact(line)
    assert "somethingsecret" not in cleaned
    assert "hunter2" not in cleaned
    assert TOKEN not in cleaned
    assert "[redacted]" in cleaned


def test_redact__query_string__keeps_the_other_parameters() -> None:
    line = "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=abc HTTP/1.1"
    assert redact(line) == (
        "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=[redacted] HTTP/1.1"
    )


@pytest.mark.parametrize(
    "line",
    ["Authorization: Ticket abcdefgh", '{"password": "a b"}', f"x {TOKEN}", "a=1&secret=b"],
)
def test_redact__applied_twice__changes_nothing_more(line: str) -> None:
    assert redact(redact(line)) == redact(line)


def test_redact__ordinary_text__is_left_alone() -> None:
    for text in (
        "user 42 logged in from 10.0.0.1 on device t1-phone",
        "ticket_id=5 and max_tokens: 7, the token is fine",
        'GET /api/accounts/me HTTP/1.1" 200 512',
    ):
        assert redact(text) == text


def test_record__secret_in_a_string_argument__keeps_the_arguments_for_formatters() -> None:
    # given: an access-log record as uvicorn makes it (its formatter unpacks `args`)
    args = ("127.0.0.1:5000", "GET", "/cgi-bin/token?secret=abc", "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', args, None)  # fmt: skip
    # when
    redact_record(record)
    # then
    assert isinstance(record.args, tuple)
    assert record.args[2] == "/cgi-bin/token?secret=[redacted]"


def test_record_factory__records_made_anywhere__are_scrubbed_when_made() -> None:
    # given: the redaction Django's logging configuration installs, and a handler
    # of someone else's (as a Celery worker sets up) with no filter at all
    install_redaction()
    logger = logging.getLogger("tests.foreign")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        # when
        logger.warning("calling %s", f"https://x.example/api?access_token=abc&t={TOKEN}")
    finally:
        logger.removeHandler(handler)
    # then
    assert TOKEN not in stream.getvalue()
    assert "access_token=[redacted]" in stream.getvalue()


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


@pytest.fixture(scope="module")
def logging_servers(live_env: dict[str, str], live_log_dir: Path) -> Iterator[list[ServerProcess]]:
    """daphne and uvicorn with their access logs on."""
    servers = [
        start_asgi_server(
            log_dir=live_log_dir, env=live_env | {"ACCESS_LOG": "true"}, server=kind, name=kind
        )
        for kind in ("daphne", "uvicorn")
    ]
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("index", [0, 1], ids=["daphne", "uvicorn"])
def test_access_log__credentials_in_query_strings__are_scrubbed(
    logging_servers: list[ServerProcess], index: int
) -> None:
    # given: a server logging every request
    server = logging_servers[index]
    # when: clients put an AppSecret, an access token, an openid and a ticket in URLs
    httpx.get(f"{server.url}/cgi-bin/token",
              params={"grant_type": "client_credential", "appid": "wxlogtest",
                      "secret": "AppSecretValue0123456789"})  # fmt: skip
    credentials = {"access_token": "AccessTokenValue0123", "openid": "oFollowerOpenId0123"}
    httpx.get(f"{server.url}/cgi-bin/user/info", params=credentials)
    httpx.get(f"{server.url}/api/accounts/me", params={"ticket": TOKEN})
    # then: the requests are in its access log, the credentials are not
    deadline = time.monotonic() + 30
    while "/api/accounts/me" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    log = server.log()
    assert "/cgi-bin/token?" in log
    assert "/cgi-bin/user/info?" in log
    for secret in ("AppSecretValue0123456789", "AccessTokenValue0123", "oFollowerOpenId0123",
                   TOKEN.split(".")[2]):  # fmt: skip
        assert secret not in log


def _ok_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_celery_worker__ticket_and_openid_in_a_task__are_scrubbed_from_its_log(
    live_env: dict[str, str], live_log_dir: Path
) -> None:
    # given: a real worker (Celery replaces the root handler when it starts)
    from tests.wechat_core.log_tasks import leak

    queue = "logging-test"
    worker = start_celery_worker(log_dir=live_log_dir, env=live_env, queues=queue,
                                 name="logging", include="tests.wechat_core.log_tasks")  # fmt: skip
    try:
        with serve(_ok_app) as developer:
            # when: a task logs a ticket, fails with it, and calls a URL with an openid
            url = f"{developer.url}?signature=abc&openid=oFollowerOpenId4567"
            result = leak.apply_async(kwargs={"ticket": TOKEN, "url": url}, queue=queue)
            assert result.get(timeout=60) == 200
            wait_until_idle(worker)
    finally:
        worker.stop()
    # then: the worker logged all of it, scrubbed
    log = worker.log()
    assert "handling a request with ticket [redacted]" in log
    assert "HTTP Request: GET" in log
    assert "the task failed its own way" in log
    assert "ValueError: cannot use ticket [redacted]" in log
    assert TOKEN.split(".")[2] not in log
    assert "oFollowerOpenId4567" not in log
