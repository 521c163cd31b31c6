"""The operators' two consoles lead to each other: the admin links to the
monitoring dashboards (which already link back to the admin)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services.operators import operator_grant
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_admin__every_page__links_to_the_monitoring_overview() -> None:
    # given: an operator logged in to the admin
    operator = make_user(email="ops.link@example.com")
    operator_grant(user=operator)
    client = Client()
    assert client.login(username=operator.email, password=PASSWORD)
    # when: they open the admin's index and a change list
    pages = [client.get("/admin/"), client.get("/admin/monitoring/alertrule/")]
    # then: each has the link to /monitoring/, which answers them
    for page in pages:
        assert page.status_code == 200
        assert 'href="/monitoring/" data-testid="admin-monitoring-link"' in page.content.decode()
    assert client.get("/monitoring/").status_code == 200
