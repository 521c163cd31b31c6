"""The realtime hub: one subscriber per ASGI process, shared by its connections.

Observed from outside, over real websockets to a real server on a private
Redis: notifies reach every connection that listens, whatever the others do,
and they come back by themselves after Redis restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from devtools.processes import start_asgi_server, start_redis
from messaging.services.conversations import direct_open
from tests.factories import login_session, make_friends, make_user
from tests.support.chat import Raw, raw_connect, run
from wechat_core.realtime import user_group

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


class PrivateStack:
    """One ASGI server on a Redis of its own, which a test may restart."""

    def __init__(self, live_env: dict[str, str], log_dir: Path) -> None:
        self.log_dir = log_dir
        self.redis = start_redis(log_dir=log_dir)
        self.redis_port = int(self.redis.url.rsplit(":", 1)[1])
        self.env = {
            **live_env,
            "REDIS_URL": f"{self.redis.url}/0",
            # Only notifies can tell a client about new entries in these tests.
            "MESSAGING_HEARTBEAT_SECONDS": "300",
            "REALTIME_HOUSEKEEPING_SECONDS": "0.1",
        }
        try:
            self.server = start_asgi_server(
                log_dir=log_dir, env=self.env, server="uvicorn", name="hub"
            )
        except BaseException:
            self.redis.stop()
            raise

    def subscribers(self, group: str) -> int:
        """How many processes receive `group`, as Redis counts them."""
        channel = f"{settings.CACHE_KEY_PREFIX}:asgi__group__{group}"
        with redis.Redis.from_url(self.env["REDIS_URL"]) as client:
            return int(dict(client.pubsub_numsub(channel))[channel.encode()])

    def restart_redis(self) -> None:
        self.redis.stop()
        time.sleep(0.5)
        self.redis = start_redis(log_dir=self.log_dir, port=self.redis_port)

    def stop(self) -> None:
        self.server.stop()
        self.redis.stop()


@pytest.fixture
def stack(live_env: dict[str, str], live_log_dir: Path) -> Iterator[PrivateStack]:
    running = PrivateStack(live_env, live_log_dir)
    yield running
    running.stop()


@pytest.fixture
def pair() -> tuple[Any, Any, Any, int]:
    """Alice, and Bob logged in on three devices; their 1:1 chat."""
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    chat = direct_open(ticket=login_session(alice).ticket, user_id=alice.pk, peer_id=bob.pk)
    bob_devices = [login_session(bob, name=f"bob-{n}") for n in range(3)]
    return login_session(alice), bob_devices, bob, chat.pk


def _send(chat: int, client_msg_id: str) -> dict[str, Any]:
    return {"type": "send", "id": client_msg_id, "conversation": chat,
            "client_msg_id": client_msg_id, "content": {"text": client_msg_id}}  # fmt: skip


async def _next_notify(device: Raw, timeout: float = 10) -> dict[str, Any]:
    while True:
        frame = await device.recv(timeout)
        if frame["type"] == "notify":
            return frame


def test_hub__each_device_of_a_user_hears_notifies_while_the_others_come_and_go(
    stack: PrivateStack, pair: tuple[Any, Any, Any, int]
) -> None:
    alice_session, (first, second, third), bob, chat = pair
    subscribers = []

    async def scenario() -> list[tuple[str, int]]:
        heard: list[tuple[str, int]] = []
        async with raw_connect(stack.server, alice_session.token) as alice_ws:
            alice = Raw(alice_ws)
            await alice.recv()
            async with raw_connect(stack.server, second.token) as second_ws:
                device_2 = Raw(second_ws)
                await device_2.recv()
                async with raw_connect(stack.server, first.token) as first_ws:
                    device_1 = Raw(first_ws)
                    await device_1.recv()
                    # both devices listen: both hear the first message
                    await alice.reply_to(_send(chat, "m1"))
                    heard += [("device 1", (await _next_notify(device_1))["seq"])]
                    heard += [("device 2", (await _next_notify(device_2))["seq"])]
                # device 1 left; housekeeping runs; device 2 still hears
                await asyncio.sleep(0.5)
                await alice.reply_to(_send(chat, "m2"))
                heard += [("device 2", (await _next_notify(device_2))["seq"])]
            # nobody of Bob's listens: the process leaves his group; device 3 rejoins it
            await asyncio.sleep(0.5)
            subscribers.append(stack.subscribers(user_group(bob.pk)))
            async with raw_connect(stack.server, third.token) as third_ws:
                device_3 = Raw(third_ws)
                hello = await device_3.recv()
                subscribers.append(stack.subscribers(user_group(bob.pk)))
                await alice.reply_to(_send(chat, "m3"))
                heard += [("device 3", (await _next_notify(device_3))["seq"])]
                heard += [("hello", hello["max_seq"])]
        return heard

    heard = run(scenario())
    (_, s1), (_, s1_again), (_, s2), (_, s3), (_, hello_seq) = heard
    assert [name for name, _ in heard] == ["device 1", "device 2", "device 2", "device 3", "hello"]
    assert s1 == s1_again < s2 < s3
    assert hello_seq == s2  # device 3 learnt of m2 from its hello, of m3 from a notify
    assert subscribers == [0, 1]


def test_hub__redis_restarts__notifies_come_back_on_the_same_connections(
    stack: PrivateStack, pair: tuple[Any, Any, Any, int]
) -> None:
    alice_session, (bob_session, _, _), _, chat = pair

    async def scenario() -> tuple[int, int]:
        async with (
            raw_connect(stack.server, alice_session.token) as alice_ws,
            raw_connect(stack.server, bob_session.token) as bob_ws,
        ):
            alice, bob = Raw(alice_ws), Raw(bob_ws)
            await alice.recv()
            await bob.recv()
            await alice.reply_to(_send(chat, "before"))
            before = (await _next_notify(bob))["seq"]
            await asyncio.to_thread(stack.restart_redis)
            # Notices sent while the hub reconnects are lost by design (clients
            # catch up on heartbeats); keep sending until one gets through.
            sent_after = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sent_after += 1
                ack = await alice.reply_to(_send(chat, f"after-{sent_after}"), timeout=30)
                assert ack["type"] == "send.ack", ack
                try:
                    notify = await _next_notify(bob, timeout=1)
                except TimeoutError:
                    continue
                return before, notify["seq"]
            raise AssertionError("no notify after Redis came back")

    before, after = run(scenario())
    assert after > before
