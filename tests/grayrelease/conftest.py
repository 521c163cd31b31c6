"""Operators, as the admin and the operators' API see them."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.services.operators import operator_grant
from tests.factories import PASSWORD, login_session, make_user


@pytest.fixture
def ops() -> Client:
    """An operator's browser, logged in to the admin."""
    operator = make_user(email="olga.ops@example.com", nickname="Olga")
    operator_grant(user=operator)  # staff in the Operators group, not a superuser
    browser = Client()
    assert browser.login(username="olga.ops@example.com", password=PASSWORD)
    return browser


@pytest.fixture
def operator() -> APIClient:
    """An operator's API client, with a ticket."""
    user = make_user(nickname="Oscar")
    operator_grant(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Ticket {login_session(user).token}")
    return client
