"""Delivery into members' logs: one order per conversation under concurrency, big
groups fanned out by a real Celery worker, idempotent, and lost tasks swept up."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from devtools.processes import (
    ServerProcess,
    start_asgi_server,
    start_celery_worker,
    start_redis,
    wait_until_idle,
)
from messaging.models import DeliveryCursor, Message, MessageKind
from messaging.services.conversations import group_create
from messaging.services.delivery import conversation_deliver, lagging_conversations
from messaging.services.events import conversation_lock, event_append
from messaging.services.sending import message_send
from messaging.tasks import sweep_lagging_deliveries
from messaging.types import OutgoingContent
from monitoring.exposition import metrics_text
from tests.factories import Session, login_session, make_friends, make_user
from tests.support.chat import Raw, raw_connect, run
from tests.support.concurrency import run_together
from wechat_core.sync.models import SyncEntry


def build_group(size: int) -> tuple[int, list[Session]]:
    """A group of `size` members (the first is the owner), each logged in."""
    owner = make_user(nickname="Owner")
    others = [make_user() for _ in range(size - 1)]
    for other in others:
        make_friends(owner, other)
    sessions = [login_session(owner)] + [login_session(u) for u in others]
    group = group_create(
        ticket=sessions[0].ticket, user_id=owner.pk, name="G", member_ids=[u.pk for u in others]
    )
    return group.pk, sessions


def send(session: Session, group: int, words: str) -> Any:
    return message_send(
        ticket=session.ticket, user_id=session.user.pk, conversation_id=group,
        client_msg_id=uuid.uuid4().hex, content=OutgoingContent("text", words),
    )  # fmt: skip


def conversation_order(user_id: int, group: int) -> list[int]:
    """The conversation seqs of the group's events, in the order of the user's log."""
    ids = list(
        SyncEntry.objects.filter(user_id=user_id, conversation_id=group, kind="message")
        .order_by("seq")
        .values_list("message_id", flat=True)
    )
    seq_of = dict(Message.objects.filter(id__in=ids).values_list("id", "seq"))
    return [seq_of[i] for i in ids if i is not None]


def wait_until(condition: Any, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders__every_member_logs_the_group_in_conversation_order() -> None:
    # given: a group of 6, all members sending at once, 5 messages each
    group, sessions = build_group(6)
    calls = [partial(send, s, group, f"{i}-{n}") for i, s in enumerate(sessions) for n in range(5)]
    # when
    outcomes = run_together(calls)
    # then
    assert all(o.error is None for o in outcomes)
    expected = list(range(1, 2 + len(calls)))  # the created notice, then 30 messages
    for session in sessions:
        assert conversation_order(session.user.pk, group) == expected


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_big_group__fan_out_runs_on_the_celery_worker_and_keeps_the_order(
    celery_worker: ServerProcess, settings: Any
) -> None:
    # given: groups above 3 members deliver in Celery (the sending process decides)
    settings.MESSAGING_INLINE_DELIVERY_MAX_MEMBERS = 3
    group, sessions = build_group(8)
    # when: members send concurrently
    calls = [
        partial(send, s, group, f"{i}-{n}") for i, s in enumerate(sessions[:4]) for n in range(5)
    ]
    outcomes = run_together(calls)
    # then: the acks came back, and the worker delivers everything in one order
    assert all(o.error is None for o in outcomes)
    total = 1 + len(calls)
    assert wait_until(lambda: DeliveryCursor.objects.get(pk=group).delivered_seq == total), (
        "the worker never delivered"
    )
    for session in sessions:
        assert conversation_order(session.user.pk, group) == list(range(1, total + 1))
    wait_until_idle(celery_worker)  # no task may still hold locks when the test ends


@pytest.mark.django_db
def test_big_group__send_ack_does_not_wait_for_delivery(settings: Any) -> None:
    settings.MESSAGING_INLINE_DELIVERY_MAX_MEMBERS = 3
    group, sessions = build_group(5)
    # no worker runs in this test: the created notice and the message wait in the outbox
    ack = send(sessions[1], group, "quick ack")
    assert ack.seq == 2
    assert not SyncEntry.objects.filter(conversation_id=group).exists()
    # when delivery runs, both arrive, in order
    with transaction.atomic():
        assert conversation_deliver(conversation_id=group) == 2
    for session in sessions:
        assert conversation_order(session.user.pk, group) == [1, 2]


@pytest.mark.django_db
def test_deliver__run_again__writes_nothing_twice() -> None:
    group, sessions = build_group(3)
    send(sessions[0], group, "once")
    before = SyncEntry.objects.count()
    with transaction.atomic():
        assert conversation_deliver(conversation_id=group) == 0
    assert SyncEntry.objects.count() == before


@pytest.mark.django_db
def test_sweep__delivers_a_conversation_whose_task_was_lost(settings: Any) -> None:
    # given: an event stored but never delivered (as if its task died with a worker)
    settings.MESSAGING_INLINE_DELIVERY_MAX_MEMBERS = 2
    group, sessions = build_group(3)
    with transaction.atomic():
        conversation = conversation_lock(group)
        event_append(conversation, sender_id=None, kind=MessageKind.SYSTEM, body={"event": "x"})
    assert not SyncEntry.objects.filter(conversation_id=group).exists()
    # when: the sweep runs after the grace period
    with time_machine.travel(
        timezone.now() + timedelta(seconds=settings.MESSAGING_DELIVERY_SWEEP_SECONDS + 1)
    ):
        assert lagging_conversations(
            older_than_seconds=settings.MESSAGING_DELIVERY_SWEEP_SECONDS
        ) == [group]
        swept = sweep_lagging_deliveries()
    # then
    assert swept == 1
    for session in sessions:
        assert conversation_order(session.user.pk, group) == [1, 2]


class OutageStack:
    """A server and a Celery worker (with beat) on a private Redis a test may stop.
    Groups above 2 members deliver in Celery; the sweep looks every 2 seconds."""

    def __init__(self, live_env: dict[str, str], log_dir: Path) -> None:
        self.log_dir = log_dir
        self.redis = start_redis(log_dir=log_dir)
        self.port = int(self.redis.url.rsplit(":", 1)[1])
        env = live_env | {
            "REDIS_URL": f"{self.redis.url}/0",
            "CELERY_BROKER_URL": f"{self.redis.url}/1",
            "CELERY_RESULT_BACKEND": f"{self.redis.url}/1",
            "MESSAGING_INLINE_DELIVERY_MAX_MEMBERS": "2",
            "MESSAGING_DELIVERY_SWEEP_SECONDS": "2",
        }
        self.processes: list[ServerProcess] = [self.redis]
        try:
            self.server = start_asgi_server(log_dir=log_dir, env=env, name="outage")
            self.processes.append(self.server)
            self.worker = start_celery_worker(
                log_dir=log_dir, env=env, queues="delivery,default", beat=True, name="outage"
            )
            self.processes.append(self.worker)
        except BaseException:
            self.stop()
            raise

    def stop_redis(self) -> None:
        self.redis.stop()

    def start_redis(self) -> None:
        self.redis = start_redis(log_dir=self.log_dir, port=self.port)
        self.processes.append(self.redis)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def outage_stack(live_env: dict[str, str], live_log_dir: Path) -> Iterator[OutageStack]:
    stack = OutageStack(live_env, live_log_dir)
    yield stack
    stack.stop()


def enqueue_failures() -> float:
    """side_effects_failed_total{effect="delivery_enqueue"}, summed over every process."""
    pattern = re.compile(
        r'^side_effects_failed_total\{[^}]*effect="delivery_enqueue"[^}]*\} (\S+)$'
    )
    lines = metrics_text().decode().splitlines()
    return sum(float(m[1]) for line in lines if (m := pattern.match(line)))


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_send__redis_down_after_commit__acked_and_delivered_once_redis_is_back(
    outage_stack: OutageStack,
) -> None:
    # given: a group delivered by Celery, its sender connected, then Redis stops
    group, sessions = build_group(4)
    sender, member = sessions[0], sessions[1]
    failures_before = enqueue_failures()

    async def send_during_outage() -> tuple[dict[str, Any], dict[str, Any]]:
        async with raw_connect(outage_stack.server, sender.token) as ws:
            me = Raw(ws)
            await me.recv()  # hello
            await asyncio.to_thread(outage_stack.stop_redis)
            frame = {
                "type": "send", "id": "during-outage", "conversation": group,
                "client_msg_id": "outage-1", "content": {"text": "while Redis is down"},
            }  # fmt: skip
            # when: the sender sends, and retries with the same client_msg_id
            first = await me.reply_to(frame, timeout=30)
            again = await me.reply_to({**frame, "id": "retry"}, timeout=30)
            return first, again

    first, again = run(send_during_outage())
    # then: the committed send is acknowledged, and the retry finds it stored
    assert first["type"] == "send.ack", first
    assert first["message"]["duplicate"] is False
    assert (again["type"], again["message"]["id"]) == ("send.ack", first["message"]["id"])
    assert again["message"]["duplicate"] is True
    assert enqueue_failures() > failures_before  # the failed enqueue was counted
    message_id = first["message"]["id"]
    assert not SyncEntry.objects.filter(user_id=member.user.pk, message_id=message_id).exists()
    # when: Redis comes back
    outage_stack.start_redis()
    # then: the sweep delivers the group's message to every member, once
    assert wait_until(
        lambda: SyncEntry.objects.filter(message_id=message_id).count() == len(sessions), 60
    ), "the message was never delivered"
    assert Message.objects.filter(conversation_id=group, client_msg_id="outage-1").count() == 1
    wait_until_idle(outage_stack.worker)
