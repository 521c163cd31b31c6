"""Changing the password (other devices are logged out, this one stays), and
finding someone who registered with only an e-mail address, as their privacy
setting allows."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services.registration import user_create
from tests.factories import PASSWORD, login_session, make_user

pytestmark = pytest.mark.django_db


def test_password_change__logs_out_other_devices_and_the_new_one_logs_in() -> None:
    # given: Alice on two devices
    alice = make_user(nickname="Alice")
    here = APIClient(headers=login_session(alice).headers)
    there = APIClient(headers=login_session(alice, name="phone").headers)
    # when
    answer = here.post("/api/accounts/me/password",
                       {"old_password": PASSWORD, "new_password": "a new passphrase 16"},
                       format="json")  # fmt: skip
    # then
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"revoked": 1}
    assert here.get("/api/accounts/me").status_code == 200
    assert there.get("/api/accounts/me").json()["code"] == "ticket_revoked"
    alice.refresh_from_db()
    assert alice.check_password("a new passphrase 16")
    assert not alice.check_password(PASSWORD)


def test_password_change__wrong_current_password__403_and_nothing_changes() -> None:
    alice = make_user()
    client = APIClient(headers=login_session(alice).headers)
    answer = client.post("/api/accounts/me/password",
                         {"old_password": "not it", "new_password": "a new passphrase 16"},
                         format="json")  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (403, "wrong_password")
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_password_change__weak_new_password__400_naming_the_field() -> None:
    alice = make_user()
    client = APIClient(headers=login_session(alice).headers)
    body = {"old_password": PASSWORD, "new_password": "12345678"}
    answer = client.post("/api/accounts/me/password", body, format="json")
    assert answer.status_code == 400
    assert "new_password" in answer.json()["details"]["fields"]


def e_mail_only(email: str) -> User:
    return user_create(phone=None, email=email, password=PASSWORD, nickname="Erin")


def test_contact_search__finds_an_e_mail_only_user_by_address_in_any_case() -> None:
    erin = e_mail_only("erin@example.com")
    searcher = APIClient(headers=login_session(make_user()).headers)
    found = searcher.get("/api/contacts/search", {"q": " Erin@Example.COM "}).json()["results"]
    assert [user["id"] for user in found] == [erin.pk]


def test_contact_search__e_mail__hidden_when_not_discoverable_by_e_mail() -> None:
    erin = e_mail_only("erin2@example.com")
    erin_client = APIClient(headers=login_session(erin).headers)
    changed = erin_client.patch("/api/accounts/me", {"discoverable_by_email": False}, format="json")
    assert changed.json()["discoverable_by_email"] is False
    searcher = APIClient(headers=login_session(make_user()).headers)
    assert searcher.get("/api/contacts/search", {"q": "erin2@example.com"}).json()["results"] == []
