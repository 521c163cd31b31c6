"""A developer's server that keeps failing is shielded by the caller (seed 000):
after BREAKER_FAILURES failures in a row its breaker ejects it, pushes are
answered at once without reaching it (the webhook log says "ejected"), and after
the cool-down one probe goes through; when the server has recovered, it is back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devtools.devservers import raw_server
from publicplatform.transport import METRICS_SERVICE, developer_call
from wechat_core import breakers
from wechat_core.metrics import sample_value

pytestmark = pytest.mark.django_db
TOKEN = "testtoken123"


def push(url: str) -> Any:
    return developer_call(
        method="POST", url=url, params={"signature": "x"}, timeout=5, max_bytes=10_000,
        content=b"<xml/>", content_type="text/xml",
    )  # fmt: skip


def test_failing_developer_server__ejected__refused_fast__probed_back_when_recovered(
    settings: Any,
) -> None:
    settings.BREAKER_FAILURES, settings.BREAKER_RESET_SECONDS = 3, 0.5
    health = {"status": "500 Internal Server Error"}
    with raw_server(token=TOKEN, post=lambda: (health["status"], b"oops")) as server:
        instance = breakers.instance_of(server.url)
        ejections = sample_value("breaker_transitions_total", service=METRICS_SERVICE, state="open")
        # given: the server fails three pushes in a row
        for _ in range(3):
            assert push(server.url).status_code == 500
        assert len(server.posts()) == 3
        # when: more pushes while it is ejected
        refused = [push(server.url) for _ in range(5)]
        # then: none reached it; each was answered at once, saying why
        assert len(server.posts()) == 3
        assert all(r.error == "connect_error" and r.detail.startswith("ejected:") for r in refused)
        assert breakers.state(METRICS_SERVICE, instance) == "open"
        assert (
            sample_value("breaker_transitions_total", service=METRICS_SERVICE, state="open")
            == ejections + 1
        )
        # when: the server recovers and the cool-down passes
        health["status"] = "200 OK"
        deadline = time.monotonic() + 30
        while breakers.ejected(METRICS_SERVICE, instance):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # then: the next push is the probe; it succeeds and the instance is back
        probe = push(server.url)
        assert (probe.status_code, probe.error) == (200, "")
        assert len(server.posts()) == 4
        assert breakers.state(METRICS_SERVICE, instance) == "closed"
        assert push(server.url).status_code == 200
        assert len(server.posts()) == 5
