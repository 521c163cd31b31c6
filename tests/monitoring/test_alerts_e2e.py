"""End to end: errors injected into a live server fire a rule, evaluated by Celery
beat; e-mail (a local SMTP server), the Alertmanager webhook (a local HTTP server)
and the operator's chat (over SYNC) each get exactly one firing notice; the errors
stop and each gets exactly one resolved notice."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from accounts.services.operators import operator_grant
from devtools.processes import (
    ServerProcess,
    free_port,
    start_asgi_server,
    start_celery_worker,
    start_redis,
)
from monitoring.models import AlertRule, NotificationChannel
from tests.factories import login_session, make_user
from tests.support.chat import client_for, run

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode(errors="replace"))
        return "250 OK"


class Hooks(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hooks.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[tuple[Mailbox, int, str]]:
    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    Hooks.received = []
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    yield mailbox, smtp_port, f"http://127.0.0.1:{hooks.server_address[1]}/alerts"
    hooks.shutdown()
    controller.stop()


@pytest.fixture
def monitored(live_env: dict[str, str], tmp_path: Path, outside: Any) -> Iterator[ServerProcess]:
    """A server and a worker with beat that flush every second and evaluate every second,
    on a private broker (no other worker may take their tasks)."""
    _, smtp_port, _ = outside
    broker = start_redis(log_dir=tmp_path)
    env = {
        **live_env,
        "MONITORING_FLUSH_SECONDS": "1",
        "MONITORING_EVALUATE_SECONDS": "1",
        "CELERY_BROKER_URL": f"{broker.url}/0",
        "CELERY_RESULT_BACKEND": f"{broker.url}/0",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
    }
    server = start_asgi_server(log_dir=tmp_path, env=env, name="monitored")
    worker = start_celery_worker(
        log_dir=tmp_path, env=env, queues="monitoring,default,delivery", beat=True, name="monitored"
    )
    yield server
    worker.stop()
    server.stop()
    broker.stop()


def wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_alert__errors_then_none__every_channel_gets_one_firing_and_one_resolved(
    monitored: ServerProcess, outside: Any
) -> None:
    mailbox, _, hook_url = outside
    # given: an operator with a chat client online, and a rule on refused tickets at /me
    operator = make_user(nickname="Olga", email="olga@example.com")
    operator_grant(user=operator)
    AlertRule.objects.all().delete()  # only this rule and these channels (not the defaults)
    NotificationChannel.objects.all().delete()
    AlertRule.objects.create(
        name="Refused at /me",
        metric="http_requests_total",
        aggregation="ratio",
        labels={"route": "api/accounts/me"},
        numerator_labels={"outcome": "4xx"},
        window_seconds=8,
        comparison="above",
        threshold=0.5,
        min_volume=5,
        for_seconds=0,
        severity="critical",
        description="Clients are being refused.",
    )
    NotificationChannel.objects.create(name="ops mail", kind="email")
    NotificationChannel.objects.create(name="am", kind="webhook", target=hook_url)
    NotificationChannel.objects.create(name="ops chat", kind="chat")
    session = login_session(operator)

    async def scenario() -> list[str]:
        texts: list[str] = []
        # when: errors are injected (requests with a bad ticket) for a few seconds
        async with (
            client_for(session, [monitored]) as chat,
            httpx.AsyncClient(base_url=monitored.url) as http,
        ):
            for _ in range(40):
                await http.get("/api/accounts/me", headers={"Authorization": "Ticket t1.1.x"})
                await asyncio.sleep(0.1)
            entry = await chat.wait_for(lambda e: e["kind"] == "message", 40)
            texts.append(entry["message"]["body"]["text"])
            # and then stop: only good requests
            for _ in range(60):
                await http.get("/api/accounts/me", headers=session.headers)
                await asyncio.sleep(0.1)
            entry = await chat.wait_for(lambda e: e["kind"] == "message", 40)
            texts.append(entry["message"]["body"]["text"])
            await asyncio.sleep(3)  # a duplicate would arrive by now
            while not chat.entries.empty():
                extra = chat.entries.get_nowait()
                if extra["kind"] == "message":
                    texts.append(extra["message"]["body"]["text"])
        return texts

    texts = run(scenario(), timeout=150)
    # then: the chat got one firing and one resolved message, in that order
    assert [t.split("]")[0] for t in texts] == ["[FIRING", "[RESOLVED"], texts
    assert "Refused at /me" in texts[0]
    # and: e-mail and webhook got exactly one of each too
    wait(lambda: len(mailbox.messages) >= 2 and len(Hooks.received) >= 2, 30, "mail and hooks")
    time.sleep(2)
    subjects = sorted(m.split("Subject: ", 1)[1].split("]")[0] for m in mailbox.messages)
    assert subjects == ["[FIRING", "[RESOLVED"]
    assert [h["status"] for h in Hooks.received] == ["firing", "resolved"]
    firing = Hooks.received[0]
    assert firing["version"] == "4"
    assert firing["receiver"] == "am"
    assert firing["alerts"][0]["labels"]["alertname"] == "Refused at /me"
    assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert Hooks.received[1]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
