"""Login by phone or e-mail: a ticket per device, one live ticket per device."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.exceptions import TicketRevoked
from accounts.models import Device, User
from accounts.tickets import ticket_verify
from tests.factories import PASSWORD, device_json, make_user

pytestmark = pytest.mark.django_db


def login(
    client: APIClient, identifier: str | None, password: str = PASSWORD, **device: Any
) -> Any:
    assert identifier is not None
    body = {"identifier": identifier, "password": password, "device": device_json(**device)}
    return client.post("/api/accounts/login", body, format="json")


@pytest.mark.parametrize("identifier", ["ALICE@example.com", "+8613700000001", "137 0000 0001"])
def test_login__by_email_in_any_case_or_phone_in_any_format__succeeds(identifier: str) -> None:
    alice = make_user(email="alice@example.com", phone="+8613700000001")
    response = login(APIClient(), identifier)
    assert response.status_code == 200, response.json()
    assert response.json()["user"]["id"] == alice.pk
    assert ticket_verify(token=response.json()["ticket"]).user_id == alice.pk


def test_login__wrong_password__is_401_invalid_credentials_with_attempts_left() -> None:
    make_user(email="alice@example.com")
    response = login(APIClient(), "alice@example.com", password="wrong-password")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "invalid_credentials"
    assert body["details"]["attempts_left"] == 4


def test_login__unknown_account__looks_exactly_like_a_wrong_password() -> None:
    response = login(APIClient(), "nobody@example.com", password="whatever-password")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert response.json()["details"]["attempts_left"] == 4


def test_login__disabled_account_with_right_password__is_403_account_disabled() -> None:
    user = make_user(email="gone@example.com")
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = login(APIClient(), "gone@example.com")
    assert response.status_code == 403
    assert response.json()["code"] == "account_disabled"


def test_login__each_login_without_device_uuid__is_a_new_device() -> None:
    alice = make_user()
    client = APIClient()
    first = login(client, alice.email, platform="ios", name="iPhone")
    second = login(client, alice.email, platform="windows", name="PC", client_version="3.9.0")
    assert first.json()["device"]["id"] != second.json()["device"]["id"]
    listed = client.get(
        "/api/accounts/devices", headers={"Authorization": f"Ticket {second.json()['ticket']}"}
    ).json()
    assert {(d["platform"], d["name"]) for d in listed["results"]} == {
        ("ios", "iPhone"),
        ("windows", "PC"),
    }
    assert [d["current"] for d in listed["results"] if d["name"] == "PC"] == [True]


def test_login__again_on_the_same_device__reuses_it_and_revokes_its_old_ticket() -> None:
    alice = make_user()
    client = APIClient()
    device_uuid = "6f1f8a1e-3b8e-4d53-9a43-7d7c5e3f1a01"
    first = login(client, alice.email, device_uuid=device_uuid, client_version="1.0.0")
    second = login(client, alice.email, device_uuid=device_uuid, client_version="1.1.0")
    assert first.json()["device"]["id"] == second.json()["device"]["id"]
    with pytest.raises(TicketRevoked):
        ticket_verify(token=first.json()["ticket"])
    device = Device.objects.get(pk=second.json()["device"]["id"])
    assert device.client_version == "1.1.0"
    assert Device.objects.filter(user=alice).count() == 1


def test_login__past_the_device_limit__logs_out_the_least_recently_seen(settings: Any) -> None:
    settings.DEVICES_PER_USER_MAX = 2
    alice = make_user()
    client = APIClient()
    oldest = login(client, alice.email, name="oldest").json()
    login(client, alice.email, name="middle")
    newest = login(client, alice.email, name="newest").json()
    with pytest.raises(TicketRevoked):
        ticket_verify(token=oldest["ticket"])
    names = [
        d["name"]
        for d in client.get(
            "/api/accounts/devices", headers={"Authorization": f"Ticket {newest['ticket']}"}
        ).json()["results"]
    ]
    assert sorted(names) == ["middle", "newest"]


@pytest.mark.parametrize("version", ["1", "1.0", "v1.0.0", "1.0.0.0", "", "1.0.0-" + "x" * 40])
def test_login__client_version_not_semver__is_400(version: str) -> None:
    alice = make_user()
    response = login(APIClient(), alice.email, client_version=version)
    assert response.status_code == 400
    assert "client_version" in response.json()["details"]["fields"]["device"]


def test_logout__then_the_ticket_is_refused_and_the_device_leaves_the_list() -> None:
    alice = make_user()
    client = APIClient()
    phone = login(client, alice.email, name="phone").json()
    laptop = login(client, alice.email, name="laptop").json()
    headers = {"Authorization": f"Ticket {phone['ticket']}"}
    assert client.post("/api/accounts/logout", headers=headers).status_code == 204
    refused = client.get("/api/accounts/me", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "ticket_revoked"
    remaining = client.get(
        "/api/accounts/devices", headers={"Authorization": f"Ticket {laptop['ticket']}"}
    ).json()["results"]
    assert [d["name"] for d in remaining] == ["laptop"]


def test_logout_all__over_http__reports_how_many_tickets_it_revoked() -> None:
    alice = make_user()
    client = APIClient()
    tickets = [login(client, alice.email).json()["ticket"] for _ in range(3)]
    response = client.post(
        "/api/accounts/logout-all", headers={"Authorization": f"Ticket {tickets[0]}"}
    )
    assert response.json() == {"revoked": 3}
    for ticket in tickets:
        with pytest.raises(TicketRevoked):
            ticket_verify(token=ticket)
