"""The framework measures what nobody instrumented: a new view, a new task, any
websocket frame; /metrics sums every process; outbound HTTP through one client."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess, wait_until_idle
from monitoring.exposition import metrics_text
from tests.factories import login_session, make_user
from tests.support.chat import Raw, raw_connect, run
from wechat_core.http import outbound_client
from wechat_core.metrics import sample_value


def staff_client(client: Any) -> Any:
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    return client


@pytest.mark.django_db
@pytest.mark.urls("tests.monitoring.urls_extra")
def test_new_view__without_monitoring_code__is_counted_and_timed_by_route(client) -> None:
    # given: a view nobody instrumented
    before = sample_value("http_requests_total", route="api/brand-new/<int:n>")
    # when: it is called three times with different ids
    for n in (1, 2, 3):
        assert client.get(f"/api/brand-new/{n}").status_code == 200
    # then: one series for the route (ids are not labels), counted and timed
    assert (
        sample_value(
            "http_requests_total", route="api/brand-new/<int:n>", outcome="2xx", module="tests"
        )
        == before + 3
    )
    assert sample_value("http_request_duration_seconds", route="api/brand-new/<int:n>") >= 3
    text = staff_client(client).get("/metrics").content.decode()
    assert 'route="api/brand-new/<int:n>"' in text


@pytest.mark.django_db
def test_http_metrics__with_a_ticket__are_labelled_by_client_version_and_platform(client) -> None:
    session = login_session(make_user(), platform="ios", client_version="4.2.7")
    client.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Ticket {session.token}")
    assert (
        sample_value(
            "http_requests_total", route="api/accounts/me", client_version="4.2", platform="ios"
        )
        >= 1
    )


@pytest.mark.django_db
def test_metrics_endpoint__anonymous__refused_token_or_staff_allowed(client, settings) -> None:
    settings.MONITORING_METRICS_TOKEN = "scrape-me-7f3a"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7f3a")
    assert scraped.status_code == 200
    assert scraped["Content-Type"].startswith("text/plain")
    assert b"http_requests_total" in scraped.content
    assert staff_client(client).get("/metrics").status_code == 200


@pytest.mark.django_db
def test_dashboards__non_staff__refused(client) -> None:
    session = login_session(make_user())
    assert client.get("/monitoring/").status_code == 302  # to the admin login
    assert (
        client.get("/monitoring/data", HTTP_AUTHORIZATION=f"Ticket {session.token}").status_code
        == 403
    )
    assert staff_client(client).get("/monitoring/data?page=overview").status_code == 200


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503 if self.path == "/down" else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_outbound_client__calls__counted_by_service_and_outcome() -> None:
    # given: a developer's server (a local one) that answers 200, or 503 on /down
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    before = {
        o: sample_value("outbound_requests_total", service="test.dev", outcome=o)
        for o in ("2xx", "5xx", "error")
    }
    try:
        with outbound_client(service="test.dev", timeout=2) as http:
            http.get(f"{base}/ok")
            http.get(f"{base}/down")
            with pytest.raises(httpx.ConnectError):
                http.get("http://127.0.0.1:1/")
    finally:
        server.shutdown()
    after = {
        o: sample_value("outbound_requests_total", service="test.dev", outcome=o) for o in before
    }
    assert {o: after[o] - before[o] for o in before} == {"2xx": 1, "5xx": 1, "error": 1}


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_metrics__several_servers_and_a_worker__one_scrape_sums_every_process(
    asgi_servers: list[ServerProcess], celery_worker: ServerProcess
) -> None:
    from tests.monitoring.sample_tasks import new_task

    # given: the metrics one server sees now
    first, _second = asgi_servers
    staff = make_user(nickname="Scraper")
    operator_grant(user=staff)
    with httpx.Client(base_url=first.url) as http:
        login = http.get("/admin/login/")
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert found is not None
        token = found[1]
        http.post(
            "/admin/login/",
            data={
                "username": staff.email,
                "password": "correct-horse-battery",
                "csrfmiddlewaretoken": token,
            },
        )
        before = http.get("/metrics").text
        # when: each server answers 5 requests, and the worker runs a brand-new task
        for server in asgi_servers:
            for _ in range(5):
                httpx.get(f"{server.url}/api/health")
        assert new_task.delay(21).get(timeout=30) == 42
        wait_until_idle(celery_worker)
        after = http.get("/metrics").text
    # then: the first server's /metrics counts all ten requests and the worker's task
    health = {"route": "api/health", "outcome": "2xx"}
    assert (
        _metric(after, "http_requests_total", **health)
        - _metric(before, "http_requests_total", **health)
        == 10
    )
    task = {"task": "tests.monitoring.sample_tasks.new_task", "outcome": "success"}
    assert (
        _metric(after, "celery_tasks_total", **task) - _metric(before, "celery_tasks_total", **task)
        == 1
    )
    # and: the history in the database has them too, summed over the processes
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.selectors import Query, window_value

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = window_value(
            query=Query("http_requests_total", "increase", health),
            since=timezone.now() - timedelta(minutes=5),
            until=timezone.now() + timedelta(seconds=10),
        )
        tasks = window_value(
            query=Query("celery_tasks_total", "increase", task),
            since=timezone.now() - timedelta(minutes=5),
            until=timezone.now() + timedelta(seconds=10),
        )
        if (seen.value or 0) >= 10 and (tasks.value or 0) >= 1:
            break
        time.sleep(0.5)
    assert (seen.value or 0) >= 10
    assert tasks.value == 1


def _scraped(name: str, **labels: str) -> float:
    """The value every process of this host reports (the multiprocess directory the
    test process shares with the servers it starts, as /metrics reads it)."""
    return _metric(metrics_text().decode(), name, **labels)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_websocket__connect_frames_disconnect__counted_with_no_code_in_the_app(
    asgi_servers: list[ServerProcess],
) -> None:
    # given: a client whose version nobody else uses, so its series are this test's
    session = login_session(make_user(), client_version="8.77.1")
    mine = {"route": "/ws/sync", "client_version": "8.77"}
    frames = {
        outcome: _scraped("websocket_frames_total", **mine, frame=frame, outcome=outcome)
        for frame, outcome in (("heartbeat", "ok"), ("nonsense", "error"))
    }
    closed_normally = _scraped("websocket_disconnects_total", route="/ws/sync", code="1000")
    open_before = _scraped("websocket_open_connections", route="/ws/sync")

    async def scenario() -> float:
        async with raw_connect(asgi_servers[0], session.token) as ws:
            link = Raw(ws)
            assert (await link.recv())["type"] == "hello"
            # when: a heartbeat, and a frame the app answers with an error
            assert (await link.reply_to({"type": "heartbeat", "id": 1}))["type"] == "heartbeat.ack"
            await link.send({"type": "nonsense", "id": 2})  # refused before its id is read
            while (answer := await link.recv())["type"] == "notify":
                pass
            assert (answer["type"], answer["code"]) == ("error", "unknown_frame_type")
            open_now = _scraped("websocket_open_connections", route="/ws/sync")
            await ws.close(code=1000)
        return open_now

    open_during = run(scenario())
    # then: the handshake, both frames by type and outcome, the open link and its end
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        _scraped("websocket_disconnects_total", route="/ws/sync", code="1000") <= closed_normally
    ):
        time.sleep(0.1)
    assert _scraped("websocket_connects_total", **mine, outcome="accepted") == 1
    assert _scraped("websocket_frames_total", **mine, frame="heartbeat", outcome="ok") == (
        frames["ok"] + 1
    )
    assert _scraped("websocket_frames_total", **mine, frame="nonsense", outcome="error") == (
        frames["error"] + 1
    )
    assert (
        _scraped("websocket_frame_duration_seconds_count", route="/ws/sync", frame="nonsense") >= 1
    )
    assert open_during >= open_before + 1
    assert _scraped("websocket_disconnects_total", route="/ws/sync", code="1000") >= (
        closed_normally + 1
    )
    assert _scraped("websocket_open_connections", route="/ws/sync") <= open_during - 1
