"""Pushing flag changes through SYNC: only to signed-in devices whose decision
changed, in batches, exactly once, from a Celery task; and end to end, from the
operator API through a real worker to a connected client."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

import httpx
import pytest
from django.test import override_settings

from accounts.services.devices import logout
from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess
from grayrelease.models import FeatureChange, PushStatus
from grayrelease.services.features import feature_delete, feature_percentage_set, feature_update
from grayrelease.services.push import flag_push_run, flag_pushes_resume
from grayrelease.types import FeatureSpec
from tests.factories import login_session, make_feature, make_user
from tests.support.chat import client_for, run
from wechat_core.sync.models import EntryKind, SyncEntry


def flag_entries(user_id: int) -> list[dict[str, Any]]:
    return cast(
        list[dict[str, Any]],
        list(
            SyncEntry.objects.filter(user_id=user_id, kind=EntryKind.FLAG)
            .order_by("seq")
            .values_list("payload", flat=True)
        ),
    )


def last_change(key: str) -> FeatureChange:
    change = FeatureChange.objects.filter(feature_key=key).order_by("-id").first()
    assert change is not None
    return change


@pytest.mark.django_db
def test_push__percentage_raised__writes_entries_only_for_users_whose_decision_changed() -> None:
    # given: 40 signed-in users and a client-visible feature at 0 %
    sessions = [login_session(make_user()) for _ in range(40)]
    make_feature("web.pushed", client_visible=True, percentage_bp=0)
    flag_push_run(change_id=last_change("web.pushed").pk)  # creation: off for all, nothing new
    assert not any(flag_entries(s.user.pk) for s in sessions)
    # when: raised to 50 %
    feature_percentage_set(key="web.pushed", percentage_bp=5000, actor=None)
    change = last_change("web.pushed")
    pushed = flag_push_run(change_id=change.pk)
    # then: an entry for each user now in the rollout, naming their device, nobody else
    from grayrelease.evaluation import evaluate
    from grayrelease.selectors import subject_for_ticket

    inside = {
        s.user.pk
        for s in sessions
        if evaluate(
            key="web.pushed", subject=subject_for_ticket(ticket=s.ticket, user_id=s.user.pk)
        ).enabled
    }
    assert 0 < len(inside) < 40
    for session in sessions:
        entries = flag_entries(session.user.pk)
        if session.user.pk in inside:
            assert entries == [
                {
                    "feature": "web.pushed",
                    "revision": change.revision,
                    "devices": {str(session.device_id): True},
                }
            ]
        else:
            assert entries == []
    assert pushed == len(inside)
    change.refresh_from_db()
    assert (change.push_status, change.pushed_users) == (PushStatus.DONE, len(inside))


@pytest.mark.django_db
def test_push__platform_rule__names_only_the_devices_it_changed() -> None:
    # given: Gina on a phone and in a browser; the feature is on for the web only
    gina = make_user()
    phone, browser = login_session(gina, platform="ios"), login_session(gina)
    make_feature("web.devices", client_visible=True, percentage_bp=10_000, platforms=("web",))
    flag_push_run(change_id=last_change("web.devices").pk)
    assert flag_entries(gina.pk) == [
        {"feature": "web.devices", "revision": 1, "devices": {str(browser.device_id): True}}
    ]
    # when: widened to iOS
    feature_update(
        key="web.devices",
        spec=FeatureSpec(
            key="web.devices", client_visible=True, percentage_bp=10_000, platforms=("web", "ios")
        ),
        actor=None,
    )
    flag_push_run(change_id=last_change("web.devices").pk)
    # then: the second entry is for the phone alone
    assert flag_entries(gina.pk)[1]["devices"] == {str(phone.device_id): True}


@pytest.mark.django_db
def test_push__users_signed_out__get_nothing_and_learn_at_login() -> None:
    henry = make_user()
    session = login_session(henry)
    logout(ticket=session.ticket, user_id=henry.pk)
    make_feature("web.out", client_visible=True, percentage_bp=10_000)
    flag_push_run(change_id=last_change("web.out").pk)
    assert flag_entries(henry.pk) == []


@pytest.mark.django_db
def test_push__server_side_feature__is_never_pushed() -> None:
    login_session(make_user())
    make_feature("server.hidden", percentage_bp=10_000)
    change = last_change("server.hidden")
    assert change.push_status == PushStatus.NOT_NEEDED
    assert flag_push_run(change_id=change.pk) == 0
    assert not SyncEntry.objects.filter(kind=EntryKind.FLAG).exists()


@pytest.mark.django_db
def test_push__feature_deleted__tells_devices_that_had_it_on() -> None:
    ivy = make_user()
    session = login_session(ivy)
    make_feature("web.deleted", client_visible=True, percentage_bp=10_000)
    feature_delete(key="web.deleted", actor=None)
    flag_push_run(change_id=last_change("web.deleted").pk)
    assert flag_entries(ivy.pk) == [
        {"feature": "web.deleted", "revision": 2, "devices": {str(session.device_id): False}}
    ]


@pytest.mark.django_db
@override_settings(GRAYRELEASE_PUSH_BATCH=2)
def test_push__in_batches__reaches_everyone_once_even_when_run_twice() -> None:
    # given: 5 signed-in users and batches of 2
    users = [make_user() for _ in range(5)]
    for user in users:
        login_session(user)
    make_feature("web.batched", client_visible=True, percentage_bp=10_000)
    change = last_change("web.batched")
    # when: the push runs, and runs again (a duplicated or resumed task)
    assert flag_push_run(change_id=change.pk) == 5
    assert flag_push_run(change_id=change.pk) == 5
    # then: one entry each, and the cursor went past the last user
    assert [len(flag_entries(u.pk)) for u in users] == [1] * 5
    change.refresh_from_db()
    assert change.push_cursor == users[-1].pk


@pytest.mark.django_db
def test_push__stalled__is_enqueued_again_by_the_sweep() -> None:
    make_feature("web.stalled", client_visible=True)
    change = last_change("web.stalled")
    assert flag_pushes_resume(older_than_seconds=3600) == []
    FeatureChange.objects.filter(pk=change.pk).update(
        created_at=change.created_at - dt.timedelta(hours=2)
    )
    assert flag_pushes_resume(older_than_seconds=3600) == [change.pk]


# --- End to end -----------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_flag_change__through_the_api__reaches_the_connected_client_without_a_reconnect(
    asgi_servers: list[ServerProcess], celery_worker: ServerProcess
) -> None:
    # given: Judy connected to server 2, Ken (not targeted) connected too, an operator
    judy, ken = make_user(), make_user()
    judy_session, ken_session = login_session(judy), login_session(ken, platform="ios")
    operator = make_user()
    operator_grant(user=operator)
    ops = login_session(operator).headers
    make_feature("web.live", client_visible=True, platforms=("web",))

    async def scenario() -> tuple[bool, bool, dict[str, Any], int]:
        async with (
            client_for(judy_session, asgi_servers[1:]) as judy_client,
            client_for(ken_session, asgi_servers[1:]) as ken_client,
        ):
            before = judy_client.flag_enabled("web.live")
            connects = judy_client.connects
            # when: the operator widens it to 100 % through server 1's API
            async with httpx.AsyncClient(base_url=asgi_servers[0].url, headers=ops) as http:
                answer = await http.patch(
                    "/api/grayrelease/features/web.live",
                    json={"percentage_bp": 10_000, "comment": "go"},
                )
                assert answer.status_code == 200, answer.text
            entry = await judy_client.wait_for(lambda e: e["kind"] == "flag", timeout=20)
            await asyncio.sleep(0.5)  # Ken would have had his by now too
            assert ken_client.connects == 1
            return (
                before,
                judy_client.flag_enabled("web.live"),
                entry,
                judy_client.connects - connects,
            )

    before, after, entry, reconnects = run(scenario())
    # then: Judy's client applied it live; Ken (iOS) got nothing
    assert (before, after, reconnects) == (False, True, 0)
    assert entry["payload"] == {
        "feature": "web.live",
        "revision": 2,
        "devices": {str(judy_session.device_id): True},
    }
    assert flag_entries(ken.pk) == []
    assert last_change("web.live").push_status == PushStatus.DONE


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_hello__carries_the_devices_flags(asgi_servers: list[ServerProcess]) -> None:
    make_feature("web.hello", client_visible=True, percentage_bp=10_000)
    make_feature("server.not_sent", percentage_bp=10_000)
    session = login_session(make_user())

    async def scenario() -> dict[str, Any]:
        async with client_for(session, asgi_servers[:1]) as client:
            return dict(client.flags)

    assert run(scenario()) == {"web.hello": {"enabled": True, "revision": 1}}
