"""The embedded mode of `make run`: SQLite, in-memory channel layer, in-process
Celery and its beat schedule, and demo data, served by daphne with nothing else
running."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from devtools.processes import start_asgi_server
from tests.support.embedded import embedded_env, manage

# An alert rule that holds as soon as one request is in the history.
ANY_REQUEST_RULE = (
    "from monitoring.models import AlertRule; AlertRule.objects.create(name='any request', "
    "metric='http_requests_total', aggregation='increase', window_seconds=60, "
    "comparison='above', threshold=0, min_volume=1, for_seconds=0)"
)
ALERT_OPENED = (
    "from monitoring.models import Alert; "
    "print(Alert.objects.filter(rule__name='any request').count())"
)


@pytest.mark.live
def test_embedded_mode__fresh_sqlite_with_demo_data__serves_login_and_contacts(
    tmp_path: Path,
) -> None:
    # given: the embedded defaults, no REDIS_URL, a fresh SQLite file
    env = embedded_env(
        tmp_path,
        # the schedule's alert evaluation and history, every second
        MONITORING_EVALUATE_SECONDS="1",
        MONITORING_FLUSH_SECONDS="1",
    )
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"], ["createdemo"]):
        manage(env, *command)
    demo = manage(env, "createdemo")  # twice: it is idempotent
    assert "alice@example.com / alice-demo-2026" in demo
    manage(env, "shell", "--no-imports", "-c", ANY_REQUEST_RULE)
    # when: daphne serves it
    server = start_asgi_server(log_dir=tmp_path, env=env, name="embedded")
    try:
        body = {"identifier": "alice@example.com", "password": "alice-demo-2026",
                "device": {"platform": "web", "client_version": "1.0.0", "name": "t"}}  # fmt: skip
        login = httpx.post(f"{server.url}/api/accounts/login", json=body, timeout=10)
        headers = {"Authorization": f"Ticket {login.json()['ticket']}"}
        friends = httpx.get(f"{server.url}/api/contacts/friends", headers=headers).json()
        # the seed's pool: "szdy" finds one volunteer, whose greeting comes at once
        found = httpx.get(f"{server.url}/api/official/search", params={"q": "szdy"},
                          headers=headers).json()["results"]  # fmt: skip
        followed = httpx.post(f"{server.url}/api/official/accounts/{found[0]['id']}/follow",
                              headers=headers).json()  # fmt: skip
        chat = f"{server.url}/api/messaging/conversations/{followed['conversation_id']}/messages"
        greeting = httpx.get(chat, headers=headers).json()["messages"]
        docs = httpx.get(f"{server.url}/api/docs/")
        index = httpx.get(f"{server.url}/")
        # with no Celery beat running, the server's own schedule judges the rule
        deadline, alerts = time.monotonic() + 60, "0"
        while alerts == "0" and time.monotonic() < deadline:
            time.sleep(1)
            alerts = manage(env, "shell", "--no-imports", "-c", ALERT_OPENED).strip()
    finally:
        server.stop()
    # then
    assert login.status_code == 200
    assert [f["user"]["wechat_id"] for f in friends["results"]] == ["bob_demo"]
    assert len(found) == 1
    assert found[0]["name"] in {f"szdy{n:02d}" for n in range(1, 11)}
    assert greeting[0]["body"]["text"].startswith("你好, 我是志愿者 szdy")
    assert docs.status_code == 200
    assert index.status_code == 200
    assert alerts == "1"
