"""Shared switches reach every process: ticket revocation and campus blocking,
observed through two real daphne processes. The design's bound is a second
(DESIGN.md §5); bench/propagation.py measures it (docs/performance.md). Here the
bound is generous, because one request alone on a loaded test machine can take
longer than that: the ticket cache has no expiry, so a refusal at all proves the
change travelled."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import httpx
import pytest

from accounts.services.devices import logout
from devtools.processes import ServerProcess
from tests.factories import device_json, login_session, make_user
from wechat_core.models import Campus, DataCenter
from wechat_core.services import campus_save, campus_set_blocked

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

SPEC_SECONDS = 15.0  # see the module: the 1 s figure is the bench's


def seconds_until(condition: Callable[[], bool], *, give_up_after: float = 30.0) -> float:
    """How long until `condition` holds (polling every 10 ms); inf if it never does."""
    started = time.monotonic()
    while time.monotonic() - started < give_up_after:
        if condition():
            return time.monotonic() - started
        time.sleep(0.01)
    return float("inf")


def me_status(server: ServerProcess, token: str) -> int:
    response = httpx.get(
        f"{server.url}/api/accounts/me", headers={"Authorization": f"Ticket {token}"}, timeout=5
    )
    return response.status_code


def refuses(server: ServerProcess, token: str) -> bool:
    return me_status(server, token) == 401


def test_ticket_revoked_through_one_server__is_refused_by_the_other_within_a_second(
    asgi_servers: list[ServerProcess],
) -> None:
    # given: Alice logs in on server 1; server 2 has verified (and cached) her ticket
    first, second = asgi_servers
    make_user(email="alice@example.com")
    body = {"identifier": "alice@example.com", "password": "correct-horse-battery",
            "device": device_json()}  # fmt: skip
    token = httpx.post(f"{first.url}/api/accounts/login", json=body, timeout=10).json()["ticket"]
    assert me_status(second, token) == 200
    assert me_status(second, token) == 200
    # when: she logs out through server 1
    response = httpx.post(
        f"{first.url}/api/accounts/logout", headers={"Authorization": f"Ticket {token}"}
    )
    assert response.status_code == 204
    # then: server 2 refuses the ticket within the bound
    elapsed = seconds_until(lambda: me_status(second, token) == 401)
    assert elapsed <= SPEC_SECONDS
    refused = httpx.get(
        f"{second.url}/api/accounts/me", headers={"Authorization": f"Ticket {token}"}
    ).json()
    assert refused["code"] == "ticket_revoked"


def test_ticket_revoked_by_a_third_process__is_refused_by_every_server_within_a_second(
    asgi_servers: list[ServerProcess],
) -> None:
    # given: both servers have served Bob
    bob = make_user()
    session = login_session(bob)
    for server in asgi_servers:
        assert me_status(server, session.token) == 200
    # when: this test process (an admin action, say) revokes the ticket
    logout(ticket=session.ticket, user_id=bob.pk)
    # then
    for server in asgi_servers:
        assert seconds_until(partial(refuses, server, session.token)) <= SPEC_SECONDS


def test_campus_block__is_visible_to_every_server_within_a_second(
    asgi_servers: list[ServerProcess],
) -> None:
    # given: campus sh-b, unblocked, already known to both servers
    datacenter, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
    campus_save(campus=Campus(code="sh-b", datacenter=datacenter, name="Shanghai B"), actor=None)

    def shows(server: ServerProcess, expected: bool) -> bool:
        campuses = httpx.get(f"{server.url}/api/topology", timeout=5).json()["campuses"]
        return any(c["code"] == "sh-b" and c["blocked"] is expected for c in campuses)

    for server in asgi_servers:
        assert seconds_until(partial(shows, server, False)) <= SPEC_SECONDS
    # when: an operator blocks it
    campus_set_blocked(code="sh-b", blocked=True, actor=None, reason="fibre cut")
    # then
    for server in asgi_servers:
        assert seconds_until(partial(shows, server, True)) <= SPEC_SECONDS
    # and unblocking travels the same way
    campus_set_blocked(code="sh-b", blocked=False, actor=None, reason="repaired")
    for server in asgi_servers:
        assert seconds_until(partial(shows, server, False)) <= SPEC_SECONDS
