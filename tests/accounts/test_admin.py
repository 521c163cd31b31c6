"""The operators' admin: staff only; tickets revocable, never readable."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.exceptions import TicketRevoked
from accounts.models import Ticket, User
from accounts.services.operators import OPERATORS_GROUP, operator_grant
from accounts.tickets import ticket_verify
from tests.factories import PASSWORD, login_session, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_browser() -> Client:
    operator = make_user(email="ops@example.com")
    operator_grant(user=operator)
    browser = Client()
    assert browser.login(username="ops@example.com", password=PASSWORD)
    return browser


ADMIN_PAGES = [
    "/admin/",
    "/admin/accounts/user/",
    "/admin/accounts/device/",
    "/admin/accounts/ticket/",
    "/admin/accounts/friendrequest/",
    "/admin/accounts/friendship/",
    "/admin/accounts/block/",
    "/admin/accounts/wechatidclaim/",
    "/admin/wechat_core/datacenter/",
    "/admin/wechat_core/campus/",
    "/admin/wechat_core/campusblockevent/",
]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin__chat_user_who_is_not_staff__is_sent_to_the_login_page(path: str) -> None:
    user = make_user(email="user@example.com")
    browser = Client()
    browser.force_login(user)
    response = browser.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin__operator__sees_every_page(operator_browser: Client, path: str) -> None:
    assert operator_browser.get(path).status_code == 200


def test_admin__operator_is_staff_in_the_operators_group_not_superuser() -> None:
    operator = make_user()
    operator_grant(user=operator)
    operator.refresh_from_db()
    assert operator.is_staff
    assert not operator.is_superuser
    assert list(operator.groups.values_list("name", flat=True)) == [OPERATORS_GROUP]


def test_admin__ticket_pages__never_show_the_secret_hash(operator_browser: Client) -> None:
    session = login_session(make_user())
    row = Ticket.objects.get(pk=session.ticket.ticket_id)
    for path in ("/admin/accounts/ticket/", f"/admin/accounts/ticket/{row.pk}/change/"):
        page = operator_browser.get(path).content.decode()
        assert row.secret_hash not in page
        assert session.token.split(".")[2] not in page


def test_admin__revoke_ticket_action__refuses_the_ticket(operator_browser: Client) -> None:
    session = login_session(make_user())
    response = operator_browser.post(
        "/admin/accounts/ticket/",
        {"action": "revoke", "_selected_action": [session.ticket.ticket_id]},
    )
    assert response.status_code == 302
    with pytest.raises(TicketRevoked):
        ticket_verify(token=session.token)
    assert Ticket.objects.get(pk=session.ticket.ticket_id).revoked_reason == "operator"


def test_admin__disabling_a_user__logs_them_out(operator_browser: Client) -> None:
    user = make_user()
    session = login_session(user)
    operator_browser.post(
        "/admin/accounts/user/", {"action": "disable_accounts", "_selected_action": [user.pk]}
    )
    user.refresh_from_db()
    assert not user.is_active
    with pytest.raises(TicketRevoked):
        ticket_verify(token=session.token)


def test_admin__device_logout_action__revokes_only_that_device(operator_browser: Client) -> None:
    user = make_user()
    phone, laptop = login_session(user), login_session(user)
    operator_browser.post(
        "/admin/accounts/device/",
        {"action": "revoke_tickets", "_selected_action": [phone.device_id]},
    )
    with pytest.raises(TicketRevoked):
        ticket_verify(token=phone.token)
    assert ticket_verify(token=laptop.token).user_id == user.pk


def test_admin__users_cannot_be_added_from_the_admin(operator_browser: Client) -> None:
    assert operator_browser.get("/admin/accounts/user/add/").status_code == 403
    assert User.objects.count() == 1
