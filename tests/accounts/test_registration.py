"""Registration by phone or e-mail: normalisation, uniqueness, passwords, home placement."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Device, User
from tests.factories import device_json

pytestmark = pytest.mark.django_db


def register(client: APIClient, **body: Any) -> Any:
    body.setdefault("password", "a-long-enough-passphrase")
    body.setdefault("nickname", "New User")
    body.setdefault("device", device_json())
    return client.post("/api/accounts/register", body, format="json")


def test_register__by_phone__normalises_to_e164_and_logs_in() -> None:
    # given
    client = APIClient()
    # when: a Chinese mobile number typed without country code, with spaces
    response = register(client, phone="138 0013 8000")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["user"]["phone"] == "+8613800138000"
    assert body["ticket"].startswith("t1.")
    me = client.get("/api/accounts/me", headers={"Authorization": f"Ticket {body['ticket']}"})
    assert me.json()["id"] == body["user"]["id"]


def test_register__by_email__stores_it_lower_case() -> None:
    response = register(APIClient(), email="Mixed.Case@Example.COM")
    assert response.status_code == 201
    assert response.json()["user"]["email"] == "mixed.case@example.com"


def test_register__email_taken_in_another_case__is_409_account_exists() -> None:
    client = APIClient()
    assert register(client, email="taken@example.com").status_code == 201
    response = register(client, email="TAKEN@example.com")
    assert response.status_code == 409
    assert response.json()["code"] == "account_exists"
    assert "email" in response.json()["details"]["fields"]
    assert User.objects.filter(email="taken@example.com").count() == 1


def test_register__phone_taken__is_409_and_names_the_phone() -> None:
    client = APIClient()
    assert register(client, phone="+8613800138001").status_code == 201
    response = register(client, phone="13800138001", email="other@example.com")
    assert response.status_code == 409
    assert "phone" in response.json()["details"]["fields"]


def test_register__neither_phone_nor_email__is_400() -> None:
    response = register(APIClient())
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("phone", ["12", "+1 555", "not a phone", "+86 138 0013 80001"])
def test_register__invalid_phone__is_400_on_the_phone_field(phone: str) -> None:
    response = register(APIClient(), phone=phone)
    assert response.status_code == 400
    assert "phone" in response.json()["details"]["fields"]


@pytest.mark.parametrize("password", ["short", "12345678901", "password123"])
def test_register__weak_password__is_400_on_the_password_field(password: str) -> None:
    response = register(APIClient(), email="weak@example.com", password=password)
    assert response.status_code == 400
    assert "password" in response.json()["details"]["fields"]
    assert not User.objects.filter(email="weak@example.com").exists()


def test_register__password__is_hashed_with_argon2() -> None:
    register(APIClient(), email="argon@example.com", password="a-long-enough-passphrase")
    user = User.objects.get(email="argon@example.com")
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password("a-long-enough-passphrase")


def test_register__records_home_datacenter_and_campus_from_settings(settings: Any) -> None:
    # given: this process serves campus hk-b of data centre hk
    settings.DATACENTER, settings.CAMPUS = "hk", "hk-b"
    # when
    response = register(APIClient(), email="hk@example.com")
    # then
    assert response.json()["user"]["home_datacenter"] == "hk"
    user = User.objects.get(email="hk@example.com")
    assert (user.home_datacenter_id, user.home_campus_id) == ("hk", "hk-b")
    assert user.home_campus.datacenter_id == "hk"


def test_register__creates_the_registering_device() -> None:
    response = register(
        APIClient(), email="dev@example.com", device=device_json(platform="ios", name="iPhone")
    )
    device = Device.objects.get(pk=response.json()["device"]["id"])
    assert (device.platform, device.name, device.user.email) == ("ios", "iPhone", "dev@example.com")


def test_register__too_many_from_one_address__is_429_with_retry_after(settings: Any) -> None:
    settings.REGISTRATIONS_PER_IP_PER_HOUR = 2
    client = APIClient()
    for number in range(2):
        assert register(client, email=f"r{number}@example.com").status_code == 201
    response = register(client, email="r3@example.com")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert not User.objects.filter(email="r3@example.com").exists()
