"""Brute-force protection: per account and per IP, with a clear error and a retry-after."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.services.operators import operator_grant
from tests.factories import PASSWORD, device_json, make_user

pytestmark = pytest.mark.django_db


def attempt(identifier: str | None, password: str, ip: str = "203.0.113.7") -> Any:
    assert identifier is not None
    body = {"identifier": identifier, "password": password, "device": device_json()}
    return APIClient(REMOTE_ADDR=ip).post("/api/accounts/login", body, format="json")


@pytest.fixture
def short_lockout(settings: Any) -> Any:
    settings.LOGIN_ACCOUNT_MAX_FAILURES = 3
    settings.LOGIN_IP_MAX_FAILURES = 5
    settings.LOGIN_LOCKOUT_SECONDS = 2
    return settings


def test_account__after_max_failures__is_locked_even_for_the_right_password(
    short_lockout: Any,
) -> None:
    # given
    alice = make_user(email="alice@example.com")
    # when: three wrong passwords
    codes = [attempt(alice.email, "wrong-guess").json()["code"] for _ in range(3)]
    # then: the third locks, with a retry-after, and the right password is refused too
    assert codes == ["invalid_credentials", "invalid_credentials", "login_locked"]
    locked = attempt(alice.email, PASSWORD)
    assert locked.status_code == 429
    body = locked.json()
    assert body["code"] == "login_locked"
    assert body["details"]["scope"] == "login-account"
    assert 1 <= body["details"]["retry_after"] <= 2
    assert locked.headers["Retry-After"] == str(body["details"]["retry_after"])


def test_account__lock__lifts_after_the_lockout(short_lockout: Any) -> None:
    alice = make_user(email="alice@example.com")
    for _ in range(3):
        attempt(alice.email, "wrong-guess")
    assert attempt(alice.email, PASSWORD).status_code == 429
    time.sleep(2.1)
    assert attempt(alice.email, PASSWORD).status_code == 200


def test_account__lock__holds_from_every_address(short_lockout: Any) -> None:
    alice = make_user(email="alice@example.com")
    for _ in range(3):
        attempt(alice.email, "wrong-guess", ip="203.0.113.7")
    assert attempt(alice.email, PASSWORD, ip="198.51.100.1").json()["code"] == "login_locked"


def test_account__identifier_in_another_form__shares_the_same_counter(short_lockout: Any) -> None:
    make_user(phone="+8613700000002", email=None)
    attempt("+8613700000002", "wrong-1")
    attempt("137 0000 0002", "wrong-2")
    assert attempt("13700000002", "wrong-3").json()["code"] == "login_locked"


def test_account__success__resets_the_failure_count(short_lockout: Any) -> None:
    alice = make_user(email="alice@example.com")
    attempt(alice.email, "wrong-guess")
    attempt(alice.email, "wrong-guess")
    assert attempt(alice.email, PASSWORD).status_code == 200
    assert attempt(alice.email, "wrong-guess").json()["details"]["attempts_left"] == 2


def test_ip__spraying_many_accounts__locks_the_address_not_the_accounts(
    short_lockout: Any,
) -> None:
    # given: five accounts, one wrong password each, from one address
    users = [make_user() for _ in range(5)]
    codes = [attempt(user.email, "wrong-guess", ip="203.0.113.9").json()["code"] for user in users]
    # then: the fifth failure locks the address
    assert codes[-1] == "login_locked"
    refused = attempt(users[0].email, PASSWORD, ip="203.0.113.9").json()
    assert (refused["code"], refused["details"]["scope"]) == ("login_locked", "login-ip")
    # and the accounts themselves still log in from elsewhere
    assert attempt(users[0].email, PASSWORD, ip="198.51.100.2").status_code == 200


def test_unknown_account__is_locked_like_a_real_one(short_lockout: Any) -> None:
    codes = [attempt("ghost@example.com", "guess").json()["code"] for _ in range(3)]
    assert codes[-1] == "login_locked"


def test_admin_login__shares_the_lock_and_says_how_long_to_wait(short_lockout: Any) -> None:
    # given: an operator whose account is locked by failures on the API
    operator = make_user(email="ops@example.com")
    operator_grant(user=operator)
    for _ in range(3):
        attempt(operator.email, "wrong-guess")
    # when: the right password on the admin login page
    browser = Client()
    response = browser.post(
        "/admin/login/", {"username": operator.email, "password": PASSWORD, "next": "/admin/"}
    )
    # then: refused with the wait (429, Retry-After), and not logged in
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert "Too many failed logins" in response.content.decode()
    assert browser.get("/admin/").status_code == 302


def test_console_login__once_the_lock_engages__answers_429_with_the_wait(
    short_lockout: Any,
) -> None:
    # given: a developer guessing passwords on the console's login page
    developer = make_user(email="dev@example.com")
    browser = Client(raise_request_exception=False)

    def post(password: str) -> Any:
        body = {"username": developer.email, "password": password, "next": "/platform/"}
        return browser.post("/platform/login/", body)

    # when: the failures reach the account's limit, then the right password
    answers = [post("wrong-guess") for _ in range(3)] + [post(PASSWORD)]
    # then: wrong passwords say so; the lock is a 429 page saying how long to wait
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert "Wrong login or password" in answers[0].content.decode()
    for locked in answers[2:]:
        assert 1 <= int(locked.headers["Retry-After"]) <= 2
        page = locked.content.decode()
        assert "Too many failed logins for this account" in page
        assert "Try again in" in page
    assert browser.get("/platform/").status_code == 302  # not logged in


def test_console_login__right_password__logs_in() -> None:
    developer = make_user(email="dev@example.com")
    browser = Client()
    response = browser.post(
        "/platform/login/",
        {"username": developer.email, "password": PASSWORD, "next": "/platform/"},
    )
    assert (response.status_code, response["Location"]) == (302, "/platform/")
    assert browser.get("/platform/").status_code == 200
