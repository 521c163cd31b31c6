"""Traffic guard (seed 001 §11): a client repeating one request without progress is
told to stop for a while, over HTTP and over the SYNC websocket; counted."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
import websockets

from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess, start_asgi_server
from messaging.services.conversations import direct_open, group_create
from monitoring.models import GuardBlock
from monitoring.services.trafficguard import guard_unblock
from tests.factories import befriend_all, login_session, make_friends, make_user
from tests.support.chat import Raw, raw_connect, run
from wechat_core.metrics import sample_value
from wechat_core.sync.models import UserSequence


@pytest.mark.django_db
def test_http__same_answer_past_the_limit__429_with_retry_after_then_blocked(
    client, settings
) -> None:
    # given: the guard on, 5 repeats a minute allowed
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 5
    settings.MONITORING_GUARD_BLOCK_SECONDS = 30
    session = login_session(make_user())
    headers = {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}
    before = sample_value("monitoring_traffic_guard_blocks_total")
    # when: the same request gets the same answer again and again
    answers = [client.get("/api/contacts/friends", **headers).status_code for _ in range(8)]
    # then: after the limit the client is refused with the throttle body
    assert answers[:6] == [200] * 6
    assert answers[-1] == 429
    refused = client.get("/api/accounts/me", **headers)  # any endpoint: the client is blocked
    assert refused.status_code == 429
    assert 25 <= int(refused["Retry-After"]) <= 30
    assert refused.json()["code"] == "throttled"
    assert refused.json()["details"] | {"retry_after": 0} == {
        "retry_after": 0,
        "tier": 2,
        "reason": "traffic_guard",
    }
    assert sample_value("monitoring_traffic_guard_blocks_total") == before + 1
    block = GuardBlock.objects.get()
    assert (block.identity, block.endpoint) == (
        f"device:{session.device_id}",
        "GET api/contacts/friends",
    )
    # and: another client is not affected
    other = login_session(make_user())
    assert (
        client.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Ticket {other.token}").status_code
        == 200
    )
    # and: operators see the block on the overview
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    shown = client.get("/monitoring/data?page=overview").json()["guard"]
    assert [(b["identity"], b["endpoint"], b["repeats"]) for b in shown] == [
        (f"device:{session.device_id}", "GET api/contacts/friends", 6)
    ]


@pytest.mark.django_db
def test_http__loop_straddling_a_minutes_edge__blocked_at_the_same_count(client, settings) -> None:
    # given: the guard allowing 5 repeats a minute
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 5
    session = login_session(make_user())
    headers = {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}
    edge = (int(time.time() // 60) + 2) * 60
    # when: a client repeats a request 4 times just before a minute's edge, then
    # goes on just after it
    with time_machine.travel(edge - 2, tick=False) as clock:
        before = [client.get("/api/contacts/friends", **headers).status_code for _ in range(4)]
        clock.move_to(edge + 1)
        after = [client.get("/api/contacts/friends", **headers).status_code for _ in range(6)]
    # then: the 7th request (the 6th repeat) trips the guard and the 8th is refused,
    # as within one minute; a new minute did not allow 5 more
    assert before + after[:3] == [200] * 7, after
    assert after[3] == 429, after


@pytest.mark.django_db
def test_http__requests_that_make_progress__are_never_blocked(client, settings) -> None:
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 3
    session = login_session(make_user())
    headers = {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}
    # different pages, different answers: progress
    statuses = [
        client.get(f"/api/contacts/friends?page_size={n}", **headers).status_code
        for n in range(1, 12)
    ]
    assert set(statuses) == {200}
    assert not GuardBlock.objects.exists()


@pytest.mark.django_db
def test_http__friend_requests_after_some_409s__progress_adds_nothing_to_the_count(
    client, settings
) -> None:
    # given: the guard allowing 10 repeats a minute (shared in steps of 1), and a
    # client whose first 5 friend requests go to friends (409: no progress)
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 10
    me = make_user()
    friends, strangers = [make_user() for _ in range(5)], [make_user() for _ in range(20)]
    befriend_all(me, friends)
    headers = {"HTTP_AUTHORIZATION": f"Ticket {login_session(me).token}"}

    def ask(user: Any) -> int:
        body = {"to_user_id": user.pk}
        response = client.post(
            "/api/contacts/requests", body, content_type="application/json", **headers
        )
        return int(response.status_code)

    # when: then it asks 20 strangers, each answered 201 (progress)
    refused = [ask(friend) for friend in friends]
    asked = [ask(stranger) for stranger in strangers]
    # then: only the 5 failures counted; the client was never told to stop (each
    # success once added the standing count of 5 again, blocking at the 6th)
    assert refused == [409] * 5
    assert asked == [201] * 20
    assert not GuardBlock.objects.exists()


@pytest.mark.django_db
def test_http__health_checks_repeating_by_design__never_counted_nor_refused(
    client, settings
) -> None:
    # given: a load balancer's address that is also blocked for looping elsewhere
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 3
    answers = [client.get("/api/contacts/friends").status_code for _ in range(6)]
    assert answers[-1] == 429  # the address looped on an endpoint without a ticket
    # when: it probes the health check over and over
    probes = [client.get("/api/health").status_code for _ in range(10)]
    # then: every probe is answered, and only the loop was blocked
    assert set(probes) == {200}
    assert list(GuardBlock.objects.values_list("endpoint", flat=True)) == [
        "GET api/contacts/friends"
    ]


@pytest.mark.django_db
def test_unblock__by_an_operator__lets_the_client_in_at_once_where_it_was_blocked(
    client, settings
) -> None:
    # given: a client blocked by this very process
    settings.MONITORING_GUARD_ENABLED = True
    settings.MONITORING_GUARD_REPEATS_PER_MINUTE = 3
    session = login_session(make_user())
    headers = {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}
    answers = [client.get("/api/contacts/friends", **headers).status_code for _ in range(6)]
    assert answers[-1] == 429
    # when: an operator ends the block (the admin's action)
    assert guard_unblock(identity=f"device:{session.device_id}") == 1
    # then: the next request is served here, not refused by a stale copy of the block
    assert client.get("/api/accounts/me", **headers).status_code == 200


GUARD_ENV = {"MONITORING_GUARD_REPEATS_PER_MINUTE": "10", "MONITORING_GUARD_BLOCK_SECONDS": "3"}


@pytest.fixture(scope="module")
def guarded_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    server = start_asgi_server(
        log_dir=live_log_dir, name="daphne-guard", env={**live_env, **GUARD_ENV}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second_guarded_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    server = start_asgi_server(
        log_dir=live_log_dir, name="uvicorn-guard", server="uvicorn", env={**live_env, **GUARD_ENV}
    )
    yield server
    server.stop()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_http__loop_spread_over_two_processes__blocked_near_the_limit_not_twice_it(
    guarded_server: ServerProcess, second_guarded_server: ServerProcess
) -> None:
    # given: two server processes allowing 10 repeats a minute, behind a "balancer"
    # that alternates between them
    session = login_session(make_user())
    servers = [guarded_server, second_guarded_server]
    # when: the client repeats one request
    statuses = []
    with httpx.Client(headers=session.headers) as http:
        for n in range(24):
            statuses.append(http.get(f"{servers[n % 2].url}/api/contacts/friends").status_code)
            if statuses[-1] == 429:
                break
    # then: both processes' counts add up. The shared count passes 10 at the 13th
    # request (each process's first one is no repeat); the next may reach the other
    # process before the block does (SHARED_STATE_POLL_SECONDS), so the 15th at the
    # latest is refused. Counting apart, the 23rd would be the first.
    assert statuses[-1] == 429, statuses
    assert len(statuses) <= 15, statuses
    assert GuardBlock.objects.filter(endpoint="GET api/contacts/friends").count() == 1


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_websocket__looping_sync_frames__throttle_frame_close_4029_and_refused_on_reconnect(
    guarded_server: ServerProcess,
) -> None:
    session = login_session(make_user())

    async def scenario() -> tuple[dict[str, Any], int, dict[str, Any], int]:
        async with raw_connect(guarded_server, session.token) as ws:
            json.loads(await ws.recv())  # hello
            frames = []
            try:
                for n in range(40):  # a client stuck syncing from the same key
                    await ws.send(json.dumps({"type": "sync", "key": 0, "id": n}))
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else 0
        throttle = next(f for f in frames if f["type"] == "throttle")
        async with raw_connect(guarded_server, session.token) as again:
            refused_frame = json.loads(await asyncio.wait_for(again.recv(), 5))
            with pytest.raises(websockets.ConnectionClosed) as closed_again:
                await asyncio.wait_for(again.recv(), 5)
        rcvd = closed_again.value.rcvd
        return throttle, code, refused_frame, rcvd.code if rcvd else 0

    throttle, code, refused, code_again = run(scenario())
    assert (throttle["tier"], throttle["reason"], code) == (2, "traffic_guard", 4029)
    assert 1 <= throttle["retry_after"] <= 3
    assert (refused["type"], code_again) == ("throttle", 4029)
    assert GuardBlock.objects.filter(endpoint="ws sync").count() == 1


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_websocket__reconnect_loop__stopped_with_throttle_and_4029(
    guarded_server: ServerProcess,
) -> None:
    # given: a client that connects and drops again and again
    session = login_session(make_user())

    async def scenario() -> tuple[int, dict[str, Any], int]:
        for attempt in range(1, 30):
            async with raw_connect(guarded_server, session.token) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if first["type"] == "throttle":
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(ws.recv(), 5)
                    rcvd = closed.value.rcvd
                    return attempt, first, rcvd.code if rcvd else 0
        raise AssertionError("never stopped")

    # when
    attempt, throttle, code = run(scenario())
    # then: past the limit (10 repeats after the first connect) it is told to stay away
    assert attempt == 12
    assert (throttle["tier"], throttle["reason"], code) == (2, "traffic_guard", 4029)
    assert GuardBlock.objects.filter(endpoint="ws connect").count() == 1


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_websocket__empty_syncs_then_syncs_that_fetch_messages__never_blocked(
    guarded_server: ServerProcess,
) -> None:
    # given: the device (10 repeats a minute allowed): 6 identical syncs
    # answered with empty pages (5 repeats, counted)
    sender, receiver = make_user(), make_user()
    make_friends(sender, receiver)
    sender_session, receiver_session = login_session(sender), login_session(receiver)
    chat = direct_open(ticket=sender_session.ticket, user_id=sender.pk, peer_id=receiver.pk)

    async def scenario() -> list[dict[str, Any]]:
        async with (
            raw_connect(guarded_server, receiver_session.token) as receiver_ws,
            raw_connect(guarded_server, sender_session.token) as sender_ws,
        ):
            me, them = Raw(receiver_ws), Raw(sender_ws)
            key = (await me.recv())["max_seq"]
            await them.recv()
            answers = [await me.reply_to({"type": "sync", "id": n, "key": key}) for n in range(6)]
            # when: 12 times, a sync from the key finds nothing; a message arrives;
            # the same sync frame then fetches it (what §4's client does when a
            # notify comes in while its sync is in flight)
            for n in range(12):
                answers.append(await me.reply_to({"type": "sync", "id": f"e{n}", "key": key}))
                await them.reply_to(
                    {"type": "send", "id": n, "conversation": chat.pk,
                     "client_msg_id": f"m{n}", "content": {"text": f"message {n}"}}
                )  # fmt: skip
                while (frame := await me.recv())["type"] != "notify":
                    answers.append(frame)
                answers.append(await me.reply_to({"type": "sync", "id": f"f{n}", "key": key}))
                key = answers[-1]["key"]
            return answers

    answers = run(scenario())
    # then: every sync was answered, none throttled, and the 12 messages fetched
    assert [a["type"] for a in answers] == ["sync.result"] * 30, answers
    assert sum(len(a["entries"]) for a in answers) == 12
    assert not GuardBlock.objects.exists()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_websocket__clients_following_section_4_under_steady_traffic__none_blocked_a_loop_is(
    guarded_server: ServerProcess,
) -> None:
    """Devices that follow docs/protocol.md §4 to the letter (notify -> sync; one
    sync in flight; sync again after it if another notify arrived meanwhile) in a
    busy group, on a server allowing 10 repeats a minute; beside them a device
    stuck syncing from one key."""
    # given: a group of 12 listeners and 3 senders, all friends of its owner
    listeners, senders = [make_user() for _ in range(12)], [make_user() for _ in range(3)]
    owner = senders[0]
    befriend_all(owner, [*listeners, *senders[1:]])
    group = group_create(
        ticket=login_session(owner).ticket, user_id=owner.pk, name="busy",
        member_ids=[u.pk for u in [*listeners, *senders[1:]]],
    )  # fmt: skip
    listener_sessions = [login_session(u) for u in listeners]
    sender_sessions = [login_session(u) for u in senders]
    looping = login_session(make_user())
    messages_per_sender = 40
    done = asyncio.Event()

    async def listen(token: str) -> tuple[int, list[str]]:
        """A §4 client: returns its key at the end and any guard frames it got."""
        stopped: list[str] = []
        async with raw_connect(guarded_server, token) as ws:
            key = json.loads(await ws.recv())["max_seq"]
            in_flight = again = False
            while True:
                if not in_flight and done.is_set() and key >= targets[token]:
                    return key, stopped
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    if not in_flight and key < targets.get(token, 0):
                        frame = {"type": "notify", "seq": targets[token]}  # as a heartbeat
                    else:
                        continue
                except websockets.ConnectionClosed as closed:
                    stopped.append(f"closed {closed.rcvd.code if closed.rcvd else 0}")
                    return key, stopped
                if frame["type"] == "throttle":
                    stopped.append("throttle")
                elif frame["type"] == "notify":
                    if in_flight:
                        again = True
                        continue
                    if frame["seq"] <= key:
                        continue
                elif frame["type"] == "sync.result":
                    key, in_flight = max(key, frame["key"]), False
                    if not (frame["more"] or again):
                        continue
                    again = False
                else:
                    continue
                try:
                    await ws.send(json.dumps({"type": "sync", "id": uuid.uuid4().hex, "key": key}))
                except websockets.ConnectionClosed as closed:
                    stopped.append(f"closed {closed.rcvd.code if closed.rcvd else 0}")
                    return key, stopped
                in_flight = True

    async def send_all(token: str, index: int) -> None:
        async with raw_connect(guarded_server, token) as ws:
            me = Raw(ws)
            await me.recv()
            for n in range(messages_per_sender):
                ack = await me.reply_to(
                    {"type": "send", "id": n, "conversation": group.pk,
                     "client_msg_id": f"s{index}-{n}", "content": {"text": f"{index}/{n}"}}
                )  # fmt: skip
                assert ack["type"] == "send.ack", ack
                await asyncio.sleep(0.02)  # steady traffic, not a burst

    async def loop() -> tuple[dict[str, Any], int]:
        async with raw_connect(guarded_server, looping.token) as ws:
            me = Raw(ws)
            await me.recv()
            frames, code = [], 0
            try:
                for n in range(40):
                    await me.send({"type": "sync", "id": n, "key": 0})
                    frames.append(await me.recv())
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else 0
        return next(f for f in frames if f["type"] == "throttle"), code

    targets: dict[str, int] = {}

    async def scenario() -> tuple[list[tuple[int, list[str]]], tuple[dict[str, Any], int]]:
        listening = [asyncio.create_task(listen(s.token)) for s in listener_sessions]
        looped = await loop()
        await asyncio.gather(*(send_all(s.token, i) for i, s in enumerate(sender_sessions)))
        last = await asyncio.to_thread(_last_seqs)
        targets.update({s.token: last[s.user.pk] for s in listener_sessions})
        done.set()
        return await asyncio.gather(*listening), looped

    def _last_seqs() -> dict[int, int]:
        from django.db import connection

        try:
            return dict(UserSequence.objects.values_list("user_id", "last_seq"))
        finally:
            connection.close()

    results, (throttle, code) = run(scenario(), timeout=180)
    # then: every listener got everything and was never told to stop
    assert [stopped for _, stopped in results] == [[]] * len(listeners)
    assert [key for key, _ in results] == [targets[s.token] for s in listener_sessions]
    assert GuardBlock.objects.exclude(identity=f"device:{looping.device_id}").count() == 0
    # and: the device looping on one key was stopped
    assert (throttle["tier"], throttle["reason"], code) == (2, "traffic_guard", 4029)
    assert GuardBlock.objects.filter(identity=f"device:{looping.device_id}").count() == 1
