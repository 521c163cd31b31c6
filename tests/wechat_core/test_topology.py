"""Topology: data centres and campuses; the campus-blocking switch is audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.services.operators import operator_grant
from tests.factories import PASSWORD, make_user
from wechat_core.models import Campus, CampusBlockEvent, DataCenter
from wechat_core.selectors import campus_list, campus_snapshot
from wechat_core.services import campus_set_blocked, topology_ensure_local

pytestmark = pytest.mark.django_db


@pytest.fixture
def campus_b() -> Campus:
    datacenter, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
    return Campus.objects.create(
        code="sh-b", datacenter=datacenter, name="Shanghai B", endpoints="wss://b.example.com/ws\n"
    )


def test_topology_ensure_local__creates_the_configured_place_once(settings: Any) -> None:
    settings.DATACENTER, settings.CAMPUS = "ca", "ca-c"
    first, second = topology_ensure_local(), topology_ensure_local()
    assert first == second
    assert Campus.objects.get(code="ca-c").datacenter_id == "ca"
    assert DataCenter.objects.filter(code="ca").count() == 1


def test_campus_set_blocked__records_who_when_and_why(campus_b: Campus) -> None:
    operator = make_user(nickname="Ops")
    campus_set_blocked(code="sh-b", blocked=True, actor=operator, reason="fibre cut")
    campus_b.refresh_from_db()
    assert campus_b.blocked
    assert campus_b.blocked_changed_by == operator
    event = CampusBlockEvent.objects.get()
    assert (event.blocked, event.actor, event.reason) == (True, operator, "fibre cut")
    assert "Ops" in event.actor_label
    assert campus_snapshot.get()["sh-b"].blocked


def test_campus_set_blocked__to_its_current_state__writes_no_audit_entry(campus_b: Campus) -> None:
    campus_set_blocked(code="sh-b", blocked=False, actor=None)
    assert not CampusBlockEvent.objects.exists()


def test_campus_set_blocked__unknown_campus__is_not_found() -> None:
    from wechat_core.errors import NotFound

    with pytest.raises(NotFound):
        campus_set_blocked(code="nowhere", blocked=True, actor=None)


def test_admin__operator_flips_the_switch__audit_names_them_and_the_reason(
    campus_b: Campus,
) -> None:
    # given
    operator = make_user(email="ops@example.com", nickname="Night shift")
    operator_grant(user=operator)
    browser = Client()
    browser.login(username="ops@example.com", password=PASSWORD)
    # when: the campus page is saved with the switch on
    response = browser.post(
        "/admin/wechat_core/campus/sh-b/change/",
        {"code": "sh-b", "datacenter": "sh", "name": "Shanghai B", "endpoints": "wss://b/ws",
         "blocked": "on", "reason": "switch flapping",
         "block_events-TOTAL_FORMS": "0", "block_events-INITIAL_FORMS": "0"},
    )  # fmt: skip
    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    event = CampusBlockEvent.objects.get(campus=campus_b)
    assert (event.blocked, event.actor, event.reason) == (True, operator, "switch flapping")
    page = browser.get("/admin/wechat_core/campus/sh-b/change/").content.decode()
    assert "switch flapping" in page


def test_admin__audit_entries__cannot_be_edited_or_deleted(campus_b: Campus) -> None:
    operator = make_user(email="root@example.com")
    operator_grant(user=operator, superuser=True)
    campus_set_blocked(code="sh-b", blocked=True, actor=operator, reason="drill")
    event = CampusBlockEvent.objects.get()
    browser = Client()
    browser.login(username="root@example.com", password=PASSWORD)
    assert browser.get(f"/admin/wechat_core/campusblockevent/{event.pk}/delete/").status_code == 403
    browser.post(f"/admin/wechat_core/campusblockevent/{event.pk}/change/", {"reason": "nothing"})
    event.refresh_from_db()
    assert event.reason == "drill"


def test_topology_api__lists_campuses_with_switch_and_endpoints(campus_b: Campus) -> None:
    campus_set_blocked(code="sh-b", blocked=True, actor=None)
    body = APIClient().get("/api/topology").json()
    listed = {c["code"]: c for c in body["campuses"]}
    assert listed["sh-b"]["blocked"] is True
    assert listed["sh-b"]["endpoints"] == ["wss://b.example.com/ws"]
    assert (body["datacenter"], body["campus"]) == ("sh", "sh-a")
    assert [c.code for c in campus_list()] == sorted(listed)
