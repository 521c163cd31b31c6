"""Home mastership (issue 17): a user is served in their home data centre only.

The data centres here are settings; the two-data-centre deployment (two databases,
RabbitMQ, replication) is tested in tests/wechat_core/test_replication_live.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import PASSWORD, device_json, login_session, make_user
from wechat_core import datacenters
from wechat_core.models import Campus, DataCenter

pytestmark = pytest.mark.django_db

TWO_DCS = {
    "sh": {"index": 0, "endpoints": ["http://sh.example"]},
    "hk": {"index": 1, "endpoints": ["http://hk-1.example", "http://hk-2.example"]},
}


@pytest.fixture
def two_datacentres() -> Iterator[None]:
    with override_settings(
        DATACENTER="sh", DATACENTERS=TWO_DCS, MULTI_DATACENTER=True, REPLICATION_BROKER_URL="x"
    ):
        yield


def home_in_hk(user: User) -> None:
    hk, _ = DataCenter.objects.get_or_create(code="hk", defaults={"name": "HK"})
    campus, _ = Campus.objects.get_or_create(code="hk-a", defaults={"datacenter": hk})
    User.objects.filter(pk=user.pk).update(home_datacenter=hk, home_campus=campus)


def login(identifier: str, password: str = PASSWORD) -> Any:
    body = {"identifier": identifier, "password": password, "device": device_json()}
    return APIClient().post("/api/accounts/login", body, format="json")


def test_one_datacentre__nothing_is_refused_and_ids_are_not_moved() -> None:
    alice = make_user(email="alice@example.com")
    assert not datacenters.enabled()
    assert login("alice@example.com").status_code == 200
    datacenters.require_local_id(5 * datacenters.ID_BLOCK)  # no error
    assert datacenters.sequences_partition() == []
    assert alice.pk < datacenters.ID_BLOCK


@pytest.mark.usefixtures("two_datacentres")
def test_login__at_the_wrong_datacentre_with_the_right_password__is_421_with_home_endpoints() -> (
    None
):
    home_in_hk(make_user(email="roamer@example.com"))

    response = login("roamer@example.com")

    assert response.status_code == 421, response.json()
    body = response.json()
    assert body["code"] == "home_elsewhere"
    assert body["details"] == {
        "datacenter": "hk",
        "endpoints": ["http://hk-1.example", "http://hk-2.example"],
        "websocket_endpoints": ["ws://hk-1.example/ws/sync", "ws://hk-2.example/ws/sync"],
    }


@pytest.mark.usefixtures("two_datacentres")
def test_login__at_the_wrong_datacentre_with_a_wrong_password__learns_nothing_of_home() -> None:
    home_in_hk(make_user(email="roamer@example.com"))

    response = login("roamer@example.com", password="not-the-password")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


@pytest.mark.usefixtures("two_datacentres")
def test_login__of_a_user_homed_here__succeeds() -> None:
    make_user(email="local@example.com")
    assert login("local@example.com").status_code == 200


@pytest.mark.usefixtures("two_datacentres")
def test_http_call__with_a_ticket_issued_in_another_datacentre__is_421_home_elsewhere() -> None:
    # Given a ticket whose id lies in hk's block (it was issued there)
    session = login_session(make_user())
    ticket_id = int(session.token.split(".")[1])
    hk_id = datacenters.ID_BLOCK + ticket_id
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_ticket SET id = %s WHERE id = %s", [hk_id, ticket_id])
    token = session.token.replace(f".{ticket_id}.", f".{hk_id}.", 1)

    response = APIClient().get("/api/accounts/me", HTTP_AUTHORIZATION=f"Ticket {token}")

    assert response.status_code == 421, response.json()
    assert response.json()["details"]["datacenter"] == "hk"


@pytest.mark.usefixtures("two_datacentres")
def test_ids__tell_their_datacentre() -> None:
    assert datacenters.origin_of_id(17) == "sh"
    assert datacenters.origin_of_id(datacenters.ID_BLOCK + 17) == "hk"
    assert datacenters.origin_of_id(7 * datacenters.ID_BLOCK) is None


@pytest.mark.usefixtures("two_datacentres")
def test_home_frame__names_the_home_and_its_websocket_endpoints() -> None:
    frame = datacenters.home_frame(datacenters.HomeElsewhere("hk"))
    assert frame["type"] == "home"
    assert frame["endpoints"] == ["ws://hk-1.example/ws/sync", "ws://hk-2.example/ws/sync"]
    assert frame["retry"] == {"resume": "sync_key"}


@pytest.fixture
def sequences_restored() -> Iterator[None]:
    """setval is not rolled back with the test's transaction: put them back."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()"
        )
        before = cursor.fetchall()
    yield
    with connection.cursor() as cursor:
        for name, last_value in before:
            if last_value is None:
                cursor.execute("SELECT setval(%s, 1, false)", [name])
            else:
                cursor.execute("SELECT setval(%s, %s, true)", [name, last_value])


@pytest.mark.usefixtures("sequences_restored")
def test_sequences_partition__moves_this_datacentres_ids_to_its_block_once() -> None:
    dcs = {"sh": {"index": 0, "endpoints": []}, "hk": {"index": 1, "endpoints": []}}
    with override_settings(DATACENTER="hk", DATACENTERS=dcs, MULTI_DATACENTER=True):
        moved = datacenters.sequences_partition()
        again = datacenters.sequences_partition()
        user = make_user()
    assert "accounts_user_id_seq" in moved
    assert again == []
    assert datacenters.origin_of_id(user.pk) is None  # settings restored: one DC
    assert user.pk // datacenters.ID_BLOCK == 1
