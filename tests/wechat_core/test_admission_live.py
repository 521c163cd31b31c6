"""FastReject against real servers: a daphne made overloaded (one worker slot, a
flood of requests) refuses the lowest priorities first and still serves logins;
a real Celery worker drops a task that waited past its deadline, and acknowledges it."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery
from celery.exceptions import TaskRevokedError

from devtools.processes import (
    ServerProcess,
    start_asgi_server,
    start_celery_worker,
    start_redis,
)
from monitoring.exposition import metrics_text
from tests.factories import PASSWORD, device_json, make_user
from tests.support.overload import SEND_ROUTE, flood_requests, small_server_start
from wechat_core.celery import app as suite_app

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

# One class of request each, none of them needing a valid ticket: the refusal comes
# before any view, and an admitted one is answered 401 by the view.
FLOOD = {
    "send": SEND_ROUTE,
    "official": ("GET", "/api/official/search?q=news"),
    "other": ("GET", "/api/wallet"),
}


@pytest.fixture
def small_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    """A daphne with one worker slot, so a modest flood makes it overloaded."""
    # DAGOR's threshold, below the default: a flood of one slot overloads it soon.
    server = small_server_start(env=live_env, log_dir=live_log_dir, name="admission")
    yield server
    server.stop()


def metric(name: str, **labels: str) -> float:
    total = 0.0
    for line in metrics_text().decode().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_overloaded_server__refuses_lowest_priorities_first__logins_still_served(
    small_server: ServerProcess,
) -> None:
    # given: a user who will log in while 48 clients flood the server
    user = make_user(email="survivor@example.com")
    outcomes: Counter[tuple[str, int]] = Counter()
    refusals: list[httpx.Response] = []
    logins: list[int] = []

    async def flood(client: httpx.AsyncClient, n: int, stop: asyncio.Event) -> None:
        # Each client floods one class only: a client that cycled through the classes
        # would send its next request of one class right after a quick refusal of
        # another, tying the classes' samples to each other's outcomes.
        kind = list(FLOOD)[n % len(FLOOD)]

        def seen(response: httpx.Response) -> None:
            outcomes[kind, response.status_code] += 1
            if response.status_code == 503 and len(refusals) < 5:
                refusals.append(response)

        await flood_requests(client, FLOOD[kind], n, stop, seen)

    async def log_in(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            overloaded = sum(n for (kind, status), n in outcomes.items() if status == 503)
            # Enough refusals for each class's share to be more than a handful of
            # samples (30 in all once let one sample reorder two neighbours).
            if overloaded >= 150 and len(logins) >= 3:
                break
            body = {"identifier": user.email, "password": PASSWORD, "device": device_json()}
            response = await client.post("/api/accounts/login", json=body, timeout=60)
            if overloaded:
                logins.append(response.status_code)
            else:
                await asyncio.sleep(0.05)  # not overloaded yet: let the flood build up
        stop.set()

    async def run() -> None:
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=small_server.url, limits=limits, timeout=60) as c:
            await asyncio.gather(log_in(c, stop), *(flood(c, n, stop) for n in range(48)))

    # when: the flood runs until the server refuses and logins were tried meanwhile
    asyncio.run(run())

    # then: the server did get overloaded and refused, cheaply and with a tier
    refused = {kind: outcomes[kind, 503] for kind in FLOOD}
    assert refused["other"] >= 1, outcomes
    first = refusals[0]
    assert first.json()["code"] == "overloaded"
    assert first.json()["tier"] >= 1
    assert int(first.headers["Retry-After"]) == first.json()["retry_after"] >= 1
    # and: the lowest priority was refused most, the highest flooded class least
    share = {
        kind: refused[kind] / max(1, sum(outcomes[kind, s] for s in (401, 503))) for kind in FLOOD
    }
    # Neighbouring priorities are refused in nearly the same share once the level sits
    # below both, so their order holds within a sampling margin; the far ends strictly.
    margin = 0.05
    assert share["other"] >= share["official"] - margin, share
    assert share["official"] > share["send"], share
    assert share["other"] > share["send"], share
    # and: every login during the overload was served
    assert logins
    assert all(status == 200 for status in logins), logins
    # and: monitoring counted the refusals by priority
    assert metric("admission_requests_total", business="other", outcome="refused") >= 1


@pytest.fixture
def login_pool_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    """A daphne with one login worker and a short login wait (the general slots as usual)."""
    env = live_env | {
        "ADMISSION_ENABLED": "true",
        "ADMISSION_LOGIN_WORKERS": "1",
        "ADMISSION_LOGIN_WAIT_MS": "300",
    }
    server = start_asgi_server(log_dir=live_log_dir, env=env, name="login-pool")
    yield server
    server.stop()


def test_login_flood__bounded_pool__extra_logins_refused_at_once_others_still_served(
    login_pool_server: ServerProcess,
) -> None:
    # given: one user, and a burst of 12 logins at once (argon2, ~0.3 s of a core each)
    user = make_user(email="burst@example.com")
    body = {"identifier": user.email, "password": PASSWORD, "device": device_json()}

    async def burst() -> tuple[list[httpx.Response], httpx.Response]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(
            base_url=login_pool_server.url, limits=limits, timeout=120
        ) as client:
            logins = [client.post("/api/accounts/login", json=body) for _ in range(12)]
            # and: meanwhile, a request of another class
            other = client.get("/api/accounts/me", headers={"Authorization": "Ticket t1.1.x"})
            *answers, answer = await asyncio.gather(*logins, other)
            return answers, answer

    # when: they arrive together
    answers, other = asyncio.run(burst())

    # then: the pool served some and refused the rest at once, as overload, with a tier
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses[200] >= 1, statuses
    assert statuses[503] >= 1, statuses
    assert set(statuses) <= {200, 503}, statuses
    refusal = next(answer for answer in answers if answer.status_code == 503)
    assert refusal.json()["code"] == "overloaded"
    assert refusal.json()["tier"] >= 1
    assert int(refusal.headers["Retry-After"]) == refusal.json()["retry_after"] >= 1
    # and: the other request was answered, by its view or (the machine being
    # overloaded by the hashing) by FastReject: never a login's refusal or a timeout
    assert other.status_code in (401, 503), other.text
    if other.status_code == 503:
        assert other.json()["code"] == "overloaded"
    # and: monitoring counted the refused logins
    assert metric("admission_requests_total", business="login", outcome="refused") >= 1


@pytest.fixture
def one_thread_worker(
    live_env: dict[str, str], live_log_dir: Path
) -> Iterator[tuple[ServerProcess, Celery, str]]:
    broker = start_redis(log_dir=live_log_dir)
    url = f"{broker.url}/0"
    # Celery reads CELERY_BROKER_URL / _RESULT_BACKEND from the environment before any
    # app's own setting, so the test's client needs them pointed at its broker.
    saved = {name: os.environ.get(name) for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    os.environ["CELERY_BROKER_URL"] = os.environ["CELERY_RESULT_BACKEND"] = url
    env = live_env | {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url}
    worker = start_celery_worker(
        log_dir=live_log_dir, env=env, queues="default", name="deadlines", pool="threads",
        concurrency=1, include="tests.wechat_core.admission_tasks",
    )  # fmt: skip
    client = Celery("deadline-test", broker=url, backend=url, set_as_current=False)
    client.conf.task_acks_late = True
    yield worker, client, url
    client.close()
    worker.stop()
    broker.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    # A new Celery app makes itself the current one, which shared tasks then use.
    suite_app.set_current()


def test_celery__task_waited_past_its_deadline__dropped_counted_and_acknowledged(
    one_thread_worker: tuple[ServerProcess, Celery, str], settings: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    worker, client, url = one_thread_worker
    settings.ADMISSION_TASK_DEADLINES = {
        "tests.wechat_core.admission_tasks.late": 1.0,
        "*": 0.0,
    }
    dropped_before = metric(
        "celery_deadline_drops_total", task="tests.wechat_core.admission_tasks.late"
    )
    # given: the worker's only thread is held
    release = tmp_path / "release"
    held = client.send_task(
        "tests.wechat_core.admission_tasks.hold", [str(release)], queue="default"
    )
    # when: a task with a 1 s deadline and one without any queue behind it
    late = client.send_task("tests.wechat_core.admission_tasks.late", [1], queue="default")
    patient = client.send_task("tests.wechat_core.admission_tasks.patient", [2], queue="default")
    # and: the deadline passes before the worker is free
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "hold" not in worker.log():
        time.sleep(0.05)
    published = datetime.now(UTC)
    while (datetime.now(UTC) - published).total_seconds() < 1.5:
        time.sleep(0.05)  # waiting for the deadline to pass is the condition here
    release.touch()
    # then: the held task and the patient one run; the late one is dropped unrun
    assert held.get(timeout=60) is True
    assert patient.get(timeout=60) == 2
    with pytest.raises(TaskRevokedError):
        late.get(timeout=60)
    # and: counted as a deadline drop, and acknowledged (nothing left unacked to redeliver)
    wait = time.monotonic() + 30
    while (
        metric("celery_deadline_drops_total", task="tests.wechat_core.admission_tasks.late")
        <= dropped_before
    ):
        assert time.monotonic() < wait, worker.log()
        time.sleep(0.05)
    broker = redis.Redis.from_url(url)
    wait = time.monotonic() + 30
    while broker.hlen("unacked"):
        assert time.monotonic() < wait, "a message stays unacknowledged"
        time.sleep(0.05)
    assert broker.llen("default") == 0


def test_login_flood__python_client__obeys_retry_after_and_every_login_gets_through(
    login_pool_server: ServerProcess,
) -> None:
    from messaging.client import login

    # given: eight users logging in with the Python client at the same moment
    users = [make_user(email=f"crowd{n}@example.com") for n in range(8)]
    refused_before = metric("admission_requests_total", business="login", outcome="refused")

    async def crowd() -> list[int]:
        async with httpx.AsyncClient(timeout=120) as http:
            url = login_pool_server.url
            sessions = await asyncio.gather(
                *(login(http, url, str(u.email), PASSWORD, overload_retries=10) for u in users)
            )
        return [session.user_id for session in sessions]

    # when: the login pool refuses some of them at first
    logged_in = asyncio.run(crowd())

    # then: each waited out its refusal and got in
    assert logged_in == [user.pk for user in users]
    refused = metric("admission_requests_total", business="login", outcome="refused")
    assert refused > refused_before


def test_overloaded_server__refuses_new_websockets_with_throttle_and_4013__clients_come_back_later(
    small_server: ServerProcess,
) -> None:
    from websockets.exceptions import ConnectionClosed

    from messaging.client import ChatClient
    from tests.factories import login_session
    from tests.support.chat import Raw, raw_connect, ws_url

    # given: two users with tickets, and a flood of sends making the server overloaded
    raw_user, client_user = login_session(make_user()), login_session(make_user())
    sends_refused = 0
    refusal: dict[str, Any] = {}
    close_code: int | None = None

    async def flood(client: httpx.AsyncClient, n: int, stop: asyncio.Event) -> None:
        def seen(response: httpx.Response) -> None:
            nonlocal sends_refused
            sends_refused += response.status_code == 503

        await flood_requests(client, FLOOD["send"], n, stop, seen)

    async def connect_until_refused() -> None:
        nonlocal close_code
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if sends_refused < 5:  # the level is not below the sync class yet
                await asyncio.sleep(0.05)
                continue
            async with raw_connect(small_server, raw_user.token) as ws:
                first = await Raw(ws).recv(30)
                if first["type"] == "throttle":
                    refusal.update(first)
                    try:
                        await ws.recv()
                    except ConnectionClosed as closed:
                        close_code = closed.rcvd.code if closed.rcvd else None
                    return
        raise AssertionError(f"no connection refused ({sends_refused} sends refused)")

    async def python_client_refused(stop: asyncio.Event) -> tuple[float, float]:
        """A Python client connecting until refused; the flood then stops. Returns when
        it was told it may come back, and when it did."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            client = ChatClient([ws_url(small_server)], client_user.token)
            await client.start(wait=False)
            try:
                while client.stopped_until <= time.monotonic() and not client.connected.is_set():
                    assert time.monotonic() < deadline, "neither refused nor let in"
                    await asyncio.sleep(0.01)
                if client.connected.is_set():  # admitted this time: ask again
                    continue
                allowed_at = client.stopped_until
                stop.set()  # nothing refuses it now: only its own waiting holds it back
                await asyncio.wait_for(client.connected.wait(), 120)
                return allowed_at, time.monotonic()
            finally:
                await client.close()
        raise AssertionError("the Python client was never refused")

    async def run() -> tuple[float, float]:
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=small_server.url, limits=limits, timeout=60) as c:
            flooding = [asyncio.create_task(flood(c, n, stop)) for n in range(48)]
            try:
                # when: a bare websocket connects during the overload
                await connect_until_refused()
                # and: the Python client does too
                return await python_client_refused(stop)
            finally:
                stop.set()
                await asyncio.gather(*flooding)

    allowed_at, came_back_at = asyncio.run(run())

    # then: the refusal was the throttle frame (answering no request), then close 4013
    assert refusal["id"] is None
    assert (refusal["reason"], refusal["code"]) == ("overloaded", "overloaded")
    assert refusal["retry_after"] >= 1
    assert refusal["tier"] >= 1
    assert close_code == 4013
    # and: the Python client, refused, came back by itself, not before it was told
    assert came_back_at >= allowed_at
    # and: monitoring counted the refused connections
    assert metric("admission_requests_total", kind="websocket_connect", outcome="refused") >= 1
