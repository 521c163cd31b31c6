"""A change saved once is in effect in every process within a second: observed
through two real daphne processes, for a change made through one of them and
for one made by a third process (an admin action, a command)."""

from __future__ import annotations

from functools import partial

import httpx
import pytest

from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess
from grayrelease.services.features import feature_set_killed
from tests.factories import login_session, make_feature, make_user
from tests.wechat_core.test_propagation import SPEC_SECONDS, seconds_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def flag_is(server: ServerProcess, headers: dict[str, str], key: str, enabled: bool) -> bool:
    """Whether the server now decides `enabled` for this device."""
    flags = httpx.get(f"{server.url}/api/flags", headers=headers, timeout=5).json()["flags"]
    return key in flags and flags[key]["enabled"] is enabled


def test_percentage_saved_through_one_server__is_in_effect_on_both_within_a_second(
    asgi_servers: list[ServerProcess],
) -> None:
    # given: a user whose flags both servers have evaluated (and cached the feature)
    make_feature("web.propagate", client_visible=True, percentage_bp=0)
    user = login_session(make_user()).headers
    operator = make_user()
    operator_grant(user=operator)
    ops = login_session(operator).headers
    for server in asgi_servers:
        assert flag_is(server, user, "web.propagate", False)
    # when: an operator widens it to everyone through server 1
    answer = httpx.patch(
        f"{asgi_servers[0].url}/api/grayrelease/features/web.propagate",
        json={"percentage_bp": 10_000},
        headers=ops,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    # then: both servers decide "on" within the bound
    for server in asgi_servers:
        assert seconds_until(partial(flag_is, server, user, "web.propagate", True)) <= SPEC_SECONDS


def test_kill_switch_pulled_by_a_third_process__is_in_effect_everywhere_within_a_second(
    asgi_servers: list[ServerProcess],
) -> None:
    make_feature("web.killme", client_visible=True, percentage_bp=10_000)
    user = login_session(make_user()).headers
    for server in asgi_servers:
        assert flag_is(server, user, "web.killme", True)
    # when: this process (say, an admin action) pulls the kill switch
    feature_set_killed(key="web.killme", killed=True, actor=None, comment="incident")
    # then
    for server in asgi_servers:
        assert seconds_until(partial(flag_is, server, user, "web.killme", False)) <= SPEC_SECONDS
