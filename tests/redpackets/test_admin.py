"""Red packets in the operators' admin: staff read packets, grabs and reconciliation
reports; chat users are sent to the login page; nothing is changed there."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services.operators import operator_grant
from redpackets.models import Packet
from redpackets.services.grabbing import packet_grab
from redpackets.services.reconcile import redpackets_reconcile
from redpackets.services.sending import packet_send
from tests.factories import PASSWORD, make_user
from tests.redpackets.conftest import group_chat, packet_request

pytestmark = pytest.mark.usefixtures("balanced_now")


def _pages() -> list[str]:
    chat = group_chat(3)
    packet = packet_send(
        ticket=chat.sender.ticket,
        user_id=chat.sender.user.pk,
        request=packet_request(chat, shares=2),
    ).packet
    grab = packet_grab(
        ticket=chat.sessions[1].ticket, user_id=chat.sessions[1].user.pk, packet_id=packet.pk
    ).grab
    assert grab is not None
    report = redpackets_reconcile()
    return [
        "/admin/redpackets/packet/", f"/admin/redpackets/packet/{packet.pk}/change/",
        "/admin/redpackets/grab/", f"/admin/redpackets/grab/{grab.pk}/change/",
        "/admin/redpackets/reconciliationreport/",
        f"/admin/redpackets/reconciliationreport/{report.pk}/change/",
    ]  # fmt: skip


def test_admin__operator__reads_every_page() -> None:
    operator = make_user(email="ops-rp@example.com")
    operator_grant(user=operator)
    browser = Client()
    assert browser.login(username="ops-rp@example.com", password=PASSWORD)
    for path in _pages():
        assert browser.get(path).status_code == 200, path
    packet = Packet.objects.get()
    response = browser.post(f"/admin/redpackets/packet/{packet.pk}/change/", {"state": "open"})
    assert response.status_code == 403


def test_admin__chat_user__is_sent_to_the_login_page() -> None:
    browser = Client()
    browser.force_login(make_user())
    for path in _pages():
        assert browser.get(path).status_code == 302
