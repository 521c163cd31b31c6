"""The drill's synthetic clients are the server's own calls to the campuses'
access endpoints (issue 13: "the server's own outbound calls avoid a blocked
campus"): they count their links against this process's breakers
(wechat_core.breakers, service CAMPUS_SERVICE), skip an instance those ejected,
and a drill is chosen among `usable_endpoints` only (no blocked campus, no
ejected instance)."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.processes import ServerProcess, free_port
from drills.services import BreakerShield, drill_run
from messaging.client import ChatClient
from monitoring.models import DrillOutcome
from tests.factories import login_session, make_user
from tests.support.chat import run, ws_url
from wechat_core import breakers
from wechat_core.campuses import CAMPUS_SERVICE
from wechat_core.models import Campus, DataCenter
from wechat_core.services import campus_save

pytestmark = pytest.mark.django_db(transaction=True)


def test_drill_client__dead_instance__ejected_then_skipped_by_the_next_clients(
    asgi_servers: list[ServerProcess], settings: Any
) -> None:
    settings.BREAKER_FAILURES = 1
    dead = f"ws://127.0.0.1:{free_port()}/ws/sync"
    live = ws_url(asgi_servers[0])
    session = login_session(make_user())

    async def connect_one() -> str:
        client = ChatClient([dead, live], session.token, shield=BreakerShield())
        await client.start(wait=False)
        try:
            await client.connected.wait()
            return client.current_endpoint
        finally:
            await client.close()

    # when: a drill client's list starts with an instance that is down
    first = run(connect_one(), timeout=60)
    # then: it failed over to the live one, and its breaker ejected the dead one
    assert first == live
    assert breakers.ejected(CAMPUS_SERVICE, breakers.instance_of(dead))
    assert breakers.state(CAMPUS_SERVICE, breakers.instance_of(live)) == "closed"
    failures = breakers.breaker(CAMPUS_SERVICE, breakers.instance_of(dead)).failures
    # when: the next client gets the same list
    second = run(connect_one(), timeout=60)
    # then: it went to the live instance without trying the dead one again
    assert second == live
    assert breakers.breaker(CAMPUS_SERVICE, breakers.instance_of(dead)).failures == failures


def test_drill__an_ejected_instance_is_not_offered__too_few_usable_campuses_skips(
    settings: Any,
) -> None:
    settings.BREAKER_FAILURES = 2
    shanghai, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
    urls = {code: f"ws://127.0.0.1:{free_port()}/ws/sync" for code in ("sh-a", "sh-b")}
    for code, url in urls.items():
        campus_save(
            campus=Campus(code=code, datacenter=shanghai, name=code, endpoints=url), actor=None
        )
    Campus.objects.exclude(code__in=urls).update(endpoints="")
    # given: the drill's clients found sh-a's only instance dead (its breaker ejected it)
    shield = BreakerShield()
    for _ in range(2):
        shield.report(urls["sh-a"], ok=False)
    # when: a drill is due
    drill = drill_run(campus=None, trigger="beat", block_seconds=5.0)
    # then: sh-a is not counted as usable, so there is no second campus to move to
    assert drill.outcome == DrillOutcome.SKIPPED
    assert "fewer than two campuses with usable access endpoints" in drill.explanation
    # when: the instance is back (a link to it succeeded)
    shield.report(urls["sh-a"], ok=True)
    # then: the drill chooses among both again (sh-b asked for: it starts, and is
    # skipped no more for want of campuses)
    from drills.services import _choose

    chosen, why_not, endpoints = _choose("sh-b")
    assert (chosen, why_not) == ("sh-b", "")
    assert endpoints == {"sh-a": [urls["sh-a"]], "sh-b": [urls["sh-b"]]}
