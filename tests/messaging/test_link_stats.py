"""Link statistics: clients report their link attempts and round trips, which
become monitoring metrics (the clients' view of the network, seed 002's smc)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from messaging.services import linkstats  # noqa: F401 - declares the client_link_* metrics
from tests.factories import login_session, make_user
from wechat_core.metrics import sample_value

pytestmark = pytest.mark.django_db


def client_of(nickname: str) -> APIClient:
    session = login_session(make_user(nickname=nickname))
    return APIClient(HTTP_AUTHORIZATION=f"Ticket {session.token}")


def connects(transport: str, outcome: str) -> float:
    return sample_value(
        "client_link_connects_total", transport=transport, outcome=outcome, platform="web"
    )


def test_reports__become_connect_counts_connect_times_and_round_trips() -> None:
    # given: Alice's web client, and the counts so far
    alice = client_of("Alice")
    before = (connects("websocket", "failed"), connects("longpoll", "ok"))
    rtt_before = sample_value("client_link_rtt_seconds", transport="websocket", platform="web")
    # when: it reports a refused websocket, a long-poll that connected in 120 ms,
    # and three heartbeat round trips
    reports = [
        {"transport": "websocket", "ok": False},
        {"transport": "longpoll", "ok": True, "connect_ms": 120},
        {"transport": "websocket", "ok": None, "rtt_ms": [40, 55, 61]},
    ]
    response = alice.post("/api/messaging/link-stats", {"reports": reports}, format="json")
    # then: counted, by transport and outcome; the round trips observed
    assert response.status_code == 200
    assert response.json() == {"counted": 3}
    assert connects("websocket", "failed") == before[0] + 1
    assert connects("longpoll", "ok") == before[1] + 1
    rtt_after = sample_value("client_link_rtt_seconds", transport="websocket", platform="web")
    assert rtt_after == rtt_before + 3


@pytest.mark.parametrize(
    "body",
    [
        {"reports": [{"transport": "carrier-pigeon", "ok": True}]},
        {"reports": [{"transport": "websocket", "ok": True, "connect_ms": -1}]},
        {"reports": [{"transport": "websocket", "ok": True}] * 21},
        {"reports": "all good"},
    ],
)
def test_bad_reports__are_refused_with_a_reason(body: dict[str, Any]) -> None:
    response = client_of("Mallory").post("/api/messaging/link-stats", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_reports__need_a_ticket() -> None:
    body = {"reports": [{"transport": "websocket", "ok": True}]}
    response = APIClient().post("/api/messaging/link-stats", body, format="json")
    assert response.status_code == 401
