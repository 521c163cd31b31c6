"""End to end: a new spam filter rolled out to half the senders behind a guarded
feature, on a real server and a Celery worker with beat. The candidate asks a
spam-scoring service that is down (a local HTTP server answering 503), so the
treated senders' checks fail while the control's (the keyword filter) pass;
the guard rolls the rollout back to 0 % by itself, the server stops calling the
broken service within a second, every message is still delivered, and the
operators hear of it through monitoring: a chat message over SYNC and an
Alertmanager webhook."""

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

from accounts.services.operators import operator_grant
from devtools.processes import (
    ServerProcess,
    start_asgi_server,
    start_celery_worker,
    start_redis,
)
from grayrelease.evaluation import evaluate
from grayrelease.models import ChangeAction, FeatureChange
from grayrelease.services.schedule import feature_schedule_start
from grayrelease.types import GuardAction, GuardSpec, Reason, StageSpec, Subject
from messaging.services.conversations import direct_open
from messaging.services.spam import CANDIDATE_FEATURE
from monitoring.models import AlertRule, NotificationChannel
from tests.factories import Session, login_session, make_feature, make_friends, make_user
from tests.support.chat import client_for, run

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


class DownSpamService(BaseHTTPRequestHandler):
    """A spam-scoring service that answers every check with 503."""

    calls = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        DownSpamService.calls += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Hooks(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        Hooks.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def outside() -> Iterator[tuple[str, str]]:
    DownSpamService.calls, Hooks.received = 0, []
    spam, hooks = serve(DownSpamService), serve(Hooks)
    yield (
        f"http://127.0.0.1:{spam.server_address[1]}/check",
        f"http://127.0.0.1:{hooks.server_address[1]}/alerts",
    )
    spam.shutdown()
    hooks.shutdown()


@pytest.fixture
def stack(live_env: dict[str, str], tmp_path: Path, outside: Any) -> Iterator[ServerProcess]:
    """A server whose senders may get the candidate filter, and a worker with beat
    that flushes history and judges guards every second, on a private broker."""
    spam_url, _ = outside
    broker = start_redis(log_dir=tmp_path)
    env = {
        **live_env,
        "MONITORING_FLUSH_SECONDS": "1",
        "GRAYRELEASE_GUARD_TICK_SECONDS": "1",
        "MESSAGING_SPAM_FILTER_CANDIDATE": "messaging.services.spam.remote_filter",
        "MESSAGING_SPAM_FILTER_URL": spam_url,
        "CELERY_BROKER_URL": f"{broker.url}/0",
        "CELERY_RESULT_BACKEND": f"{broker.url}/0",
    }
    server = start_asgi_server(log_dir=tmp_path, env=env, name="guarded")
    worker = start_celery_worker(
        log_dir=tmp_path, env=env, queues="monitoring,default,delivery", beat=True, name="guarded"
    )
    yield server
    worker.stop()
    server.stop()
    broker.stop()


def senders(count: int) -> tuple[list[Session], list[Session], Session]:
    """`count` senders in the candidate's rollout, `count` out of it, and the friend
    they all write to."""
    friend = make_user(nickname="Friend")
    treated: list[Session] = []
    control: list[Session] = []
    while len(treated) < count or len(control) < count:
        user = make_user()
        reason = evaluate(key=CANDIDATE_FEATURE, subject=Subject(user_id=user.pk)).reason
        group = treated if reason == Reason.IN_ROLLOUT else control
        if len(group) < count:
            make_friends(user, friend)
            group.append(login_session(user))
    return treated, control, login_session(friend)


def test_guarded_rollout__candidate_path_fails__is_rolled_back_and_operators_are_told(
    stack: ServerProcess, outside: Any
) -> None:
    _, hook_url = outside
    # given: operators with a chat client and a webhook; only these channels
    operator = make_user(nickname="Olga")
    operator_grant(user=operator)
    AlertRule.objects.all().delete()
    NotificationChannel.objects.all().delete()
    NotificationChannel.objects.create(name="ops chat", kind="chat")
    NotificationChannel.objects.create(name="am", kind="webhook", target=hook_url)
    ops = login_session(operator)
    # and the candidate filter's guarded rollout, at its first stage (50 %)
    guard = GuardSpec(margin_bp=2000, min_sample=10, window_seconds=20, action=GuardAction.ROLLBACK)
    make_feature(CANDIDATE_FEATURE, stages=(StageSpec(5000, 60), StageSpec(10_000, 0)), guard=guard)
    feature_schedule_start(key=CANDIDATE_FEATURE, actor=operator, comment="first cohort")
    treated, control, friend = senders(2)
    chats = {
        s.user.pk: direct_open(ticket=s.ticket, user_id=s.user.pk, peer_id=friend.user.pk).pk
        for s in treated + control
    }
    feature_url = f"/api/grayrelease/features/{CANDIDATE_FEATURE}"

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {"sent": 0, "statuses": set()}
        async with (
            client_for(ops, [stack]) as chat,
            httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
        ):

            async def send(sender: Session, n: int) -> None:
                answer = await http.post(
                    "/api/messaging/send",
                    json={
                        "conversation": chats[sender.user.pk],
                        "client_msg_id": f"g-{sender.user.pk}-{n}",
                        "content": {"kind": "text", "text": f"hello {n}"},
                    },
                    headers=sender.headers,
                )
                seen["statuses"].add(answer.status_code)
                seen["sent"] += 1

            # when: everyone chats until the rollout is no longer at 50 %
            n, deadline = 0, time.monotonic() + 60
            while time.monotonic() < deadline:
                for sender in treated + control:
                    await send(sender, n)
                n += 1
                body = (await http.get(feature_url, headers=ops.headers)).json()
                if body["percentage_bp"] != 5000:
                    break
                await asyncio.sleep(0.2)
            seen["feature"] = body
            # and: once the change is in effect (a second), treated senders go on
            await asyncio.sleep(1.5)
            calls = DownSpamService.calls
            for extra in range(5):
                for sender in treated:
                    await send(sender, n + 1 + extra)
            seen["calls_after"] = DownSpamService.calls - calls
            notice = await chat.wait_for(lambda e: e["kind"] == "message", 30)
            seen["notice"] = notice["message"]["body"]["text"]
        return seen

    seen = run(scenario(), timeout=150)
    # then: rolled back to 0 % by the guard, with the schedule back at its start
    assert seen["feature"]["percentage_bp"] == 0, seen["feature"]
    assert seen["feature"]["schedule"]["status"] == "idle"
    assert seen["feature"]["guard_verdict"]["state"] == "tripped"
    change = FeatureChange.objects.filter(action=ChangeAction.GUARD_ROLLED_BACK).get()
    assert (change.feature_key, change.actor, change.actor_label) == (
        CANDIDATE_FEATURE,
        None,
        "rollout guard",
    )
    assert "rolled back from 50.00 % to 0 %" in change.comment
    # the treated senders' checks did reach the broken service, and stopped with the rollback
    assert DownSpamService.calls >= guard.min_sample
    assert seen["calls_after"] == 0
    # nobody's message was lost on the way
    assert seen["statuses"] == {201}
    # and the operators were told: in their chat, and through the webhook
    assert seen["notice"].startswith(f"[FIRING] Rollout guard: {CANDIDATE_FEATURE}")
    assert "rolled back from 50.00 % to 0 %" in seen["notice"]
    deadline = time.monotonic() + 30
    while not Hooks.received and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [h["status"] for h in Hooks.received][:1] == ["firing"]
    labels = Hooks.received[0]["alerts"][0]["labels"]
    assert labels["alertname"] == f"Rollout guard: {CANDIDATE_FEATURE}"
    assert labels["severity"] == "critical"
