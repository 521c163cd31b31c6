"""The SYNC guarantees under load and failures (DESIGN.md §4, seed 001 §9).

Real websockets to two daphne processes, a real Celery worker with beat, a
private Redis, PostgreSQL: a 500-member group; many senders, in the group and
1:1; receivers that drop their links at random; one ASGI server restarted and
Redis restarted (losing everything in it) in the middle. At the end every
member's log holds every message of the group once, in the group's order; every
connected client received its log once, in order; no send was duplicated by
the retries the failures caused; and no sequence went backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from devtools.processes import (
    ServerProcess,
    start_asgi_server,
    start_celery_worker,
    start_redis,
)
from messaging.client import ChatClient
from messaging.models import DeliveryCursor, Message
from messaging.services.conversations import direct_open, group_create
from tests.factories import befriend_sessions, login_session, make_user
from tests.support.chat import run, ws_url
from wechat_core.sync.models import SyncEntry, UserSequence

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

GROUP_SIZE = 500
SENDERS = 12
MESSAGES_PER_SENDER = 10
LIVE_RECEIVERS = 30


class Cluster:
    """Two daphne processes and a Celery worker (with beat) on a private Redis."""

    def __init__(self, live_env: dict[str, str], log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[ServerProcess] = []
        self.worker: ServerProcess | None = None
        self.worker_starts = 0
        self.redis = start_redis(log_dir=log_dir)
        try:
            self._start(live_env)
        except BaseException:
            self.stop()  # nothing started may outlive a failed set-up
            raise

    def _start(self, live_env: dict[str, str]) -> None:
        log_dir = self.log_dir
        self.redis_port = int(self.redis.url.rsplit(":", 1)[1])
        self.env = {
            **live_env,
            "REDIS_URL": f"{self.redis.url}/0",
            "CELERY_BROKER_URL": f"{self.redis.url}/1",
            "CELERY_RESULT_BACKEND": f"{self.redis.url}/1",
            "MESSAGING_HEARTBEAT_SECONDS": "2",
            "MESSAGING_DELIVERY_SWEEP_SECONDS": "3",
            "MESSAGING_SENDS_PER_MINUTE": "100000",
        }
        self.servers = [
            start_asgi_server(log_dir=log_dir, env=self.env, name=f"g{n}") for n in (1, 2)
        ]
        self.worker = self._start_worker()
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    def _start_worker(self) -> ServerProcess:
        # The Procfile's worker (prefork), as production runs it.
        self.worker_starts += 1
        return start_celery_worker(
            log_dir=self.log_dir, env=self.env, procfile="worker", beat=True,
            name=f"guarantees-{self.worker_starts}",
        )  # fmt: skip

    def _supervise(self) -> None:
        """Restart the worker when it exits, as production's process manager does
        (docs/deploy.md): when Redis goes away while a task is unacknowledged, kombu
        5.7 now and then fails to restore it ('NoneType' object has no attribute
        'hostname') and the worker exits with "Unrecoverable error"."""
        while not self._stopping.wait(0.5):
            if self.worker is not None and self.worker.process.poll() is not None:
                with contextlib.suppress(Exception):  # Redis still down: next round
                    self.worker = self._start_worker()

    def restart_server(self, index: int) -> None:
        port = int(self.servers[index].url.rsplit(":", 1)[1])
        self.servers[index].stop()
        time.sleep(0.5)
        self.servers[index] = start_asgi_server(
            log_dir=self.log_dir, env=self.env, name=f"g{index + 1}", port=port
        )

    def restart_redis(self) -> None:
        self.redis.stop()
        time.sleep(0.5)
        self.redis = start_redis(log_dir=self.log_dir, port=self.redis_port)

    def stop(self) -> None:
        if hasattr(self, "_stopping"):
            self._stopping.set()
            self._supervisor.join(timeout=120)
        for process in [*self.servers, self.worker, self.redis]:
            if process is not None:
                process.stop()


@pytest.fixture
def cluster(live_env: dict[str, str], live_log_dir: Path) -> Any:
    running = Cluster(live_env, live_log_dir)
    yield running
    running.stop()


def wait_for_delivery(conversation_ids: list[int], stalled_after: float = 120) -> None:
    """Until every delivery has caught up; fails once no cursor moved for `stalled_after`
    seconds (a busy shared machine delivers slowly, a lost delivery never)."""
    last_progress, progress = time.monotonic(), -1
    lagging: list[DeliveryCursor] = []
    while time.monotonic() - last_progress < stalled_after:
        cursors = list(
            DeliveryCursor.objects.filter(conversation_id__in=conversation_ids).select_related(
                "conversation"
            )
        )
        lagging = [c for c in cursors if c.delivered_seq < c.conversation.last_seq]
        if not lagging:
            return
        delivered = sum(c.delivered_seq for c in cursors)
        if delivered > progress:
            last_progress, progress = time.monotonic(), delivered
        time.sleep(0.2)
    raise AssertionError(f"deliveries still lagging: {lagging}")


def test_500_member_group__servers_and_redis_restarting__everyone_gets_all_once_in_order(
    cluster: Cluster, settings: Any
) -> None:
    # given: a 500-member group; 12 senders who also each have a 1:1 chat with a buddy
    settings.FRIEND_REQUESTS_PER_DAY = GROUP_SIZE * 2
    owner = make_user(nickname="Owner")
    members = [make_user() for _ in range(GROUP_SIZE - 1)]
    logged_in = {user.pk: login_session(user) for user in [owner, *members]}
    owner_session = logged_in[owner.pk]
    befriend_sessions(owner_session, [logged_in[m.pk] for m in members])
    group = group_create(
        ticket=owner_session.ticket, user_id=owner.pk, name="Everyone",
        member_ids=[m.pk for m in members],
    )  # fmt: skip
    senders = [owner, *members[: SENDERS - 1]]
    buddies = members[SENDERS : SENDERS * 2]
    for sender, buddy in zip(senders, buddies, strict=True):
        if sender is not owner:  # the owner is everyone's friend already
            befriend_sessions(logged_in[sender.pk], [logged_in[buddy.pk]])
    sessions = {u.pk: logged_in[u.pk] for u in [*senders, *members[:LIVE_RECEIVERS]]}
    directs = {
        s.pk: direct_open(ticket=sessions[s.pk].ticket, user_id=s.pk, peer_id=b.pk).pk
        for s, b in zip(senders, buddies, strict=True)
    }
    live_users = sorted(sessions)
    endpoints = [ws_url(server) for server in cluster.servers]
    random.seed(20261121)

    async def scenario() -> tuple[dict[int, list[dict[str, Any]]], dict[int, int]]:
        clients = {
            uid: ChatClient(random.sample(endpoints, 2), sessions[uid].token) for uid in live_users
        }
        received: dict[int, list[dict[str, Any]]] = {uid: [] for uid in live_users}

        async def collect(uid: int) -> None:
            while True:
                received[uid].append(await clients[uid].entries.get())

        await asyncio.gather(*(client.start() for client in clients.values()))
        collectors = [asyncio.create_task(collect(uid)) for uid in live_users]

        async def send_all(sender: User) -> None:
            client = clients[sender.pk]
            for n in range(MESSAGES_PER_SENDER):
                await client.send(
                    group.pk, {"kind": "text", "text": f"{sender.pk}:{n}"}, timeout=90
                )
                await client.send(directs[sender.pk], {"text": f"dm {n}"}, timeout=90)
                await asyncio.sleep(random.uniform(0, 0.15))

        async def chaos() -> None:
            for step in range(12):
                await asyncio.sleep(0.4)
                for uid in random.sample(live_users, 5):
                    await clients[uid].drop_link()
                if step == 3:
                    await asyncio.to_thread(cluster.restart_server, 0)
                if step == 7:
                    await asyncio.to_thread(cluster.restart_redis)

        await asyncio.gather(chaos(), *(send_all(s) for s in senders))
        # every send was acked: wait for delivery, then for every client to catch up
        await asyncio.to_thread(_wait_and_close_connections)
        targets = await asyncio.to_thread(_max_seqs, live_users)
        deadline = time.monotonic() + 60
        while any(clients[u].key < targets[u] for u in live_users):
            assert time.monotonic() < deadline, "clients did not catch up"
            await asyncio.sleep(0.2)
        for task in collectors:
            task.cancel()
        await asyncio.gather(*(client.close() for client in clients.values()))
        return received, {uid: client.connects for uid, client in clients.items()}

    def _wait_and_close_connections() -> None:
        from django.db import connection

        try:
            wait_for_delivery([group.pk, *directs.values()])
        finally:
            connection.close()

    def _max_seqs(users: list[int]) -> dict[int, int]:
        from django.db import connection

        try:
            return dict(
                UserSequence.objects.filter(user_id__in=users).values_list("user_id", "last_seq")
            )
        finally:
            connection.close()

    received, connects = run(scenario(), timeout=600)

    # the failures really happened: links dropped, a server and Redis went away
    reconnected = sum(1 for count in connects.values() if count > 1)
    assert reconnected >= LIVE_RECEIVERS // 2, connects

    # then: no send was stored twice despite the retries
    sent = Message.objects.filter(conversation=group, kind="text")
    assert sent.count() == SENDERS * MESSAGES_PER_SENDER
    assert sent.values("client_msg_id").distinct().count() == sent.count()
    group_order = list(
        Message.objects.filter(conversation=group).order_by("seq").values_list("id", flat=True)
    )
    # and every member's log has the group's events once, in the group's order
    for member_id in [owner.pk, *(m.pk for m in members)]:
        in_log = list(
            SyncEntry.objects.filter(user_id=member_id, conversation_id=group.pk)
            .order_by("seq")
            .values_list("message_id", flat=True)
        )
        assert in_log == group_order, f"member {member_id}"
        seqs = list(
            SyncEntry.objects.filter(user_id=member_id)
            .order_by("seq")
            .values_list("seq", flat=True)
        )
        assert seqs == list(range(1, len(seqs) + 1)), f"gap or repeat in {member_id}'s log"
    # and every connected client received its whole log once, in order
    for uid, entries in received.items():
        log_size = SyncEntry.objects.filter(user_id=uid).count()
        assert [e["seq"] for e in entries] == list(range(1, log_size + 1)), f"client {uid}"
        group_ids = [e["message"]["id"] for e in entries if e.get("conversation") == group.pk]
        assert group_ids == group_order, f"client {uid} saw the group out of order"
    assert settings.MESSAGING_GROUP_MAX_MEMBERS >= GROUP_SIZE
