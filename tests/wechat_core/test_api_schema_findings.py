"""Faults schemathesis found in the API (test_api_schema.py), each reproduced directly.

Each was a disagreement between the schema and the server, or a 5xx; the fuzzing
test would find them again, these name them.
"""

from __future__ import annotations

import httpx
import pytest
from rest_framework.test import APIClient

from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess
from tests.factories import login_session, make_feature, make_friends, make_user, send_request


def client_of(user: object) -> APIClient:
    return APIClient(headers=login_session(user).headers)  # type: ignore[arg-type]


@pytest.mark.django_db
def test_feature_patch__a_stage_without_its_soak_time__is_a_400_not_a_500() -> None:
    # given: an operator and a feature
    operator = make_user()
    operator_grant(user=operator)
    make_feature("web.partial")
    # when: a PATCH gives a stage without soak_minutes (PATCH leaves out fields, not
    # halves of a stage)
    response = client_of(operator).patch(
        "/api/grayrelease/features/web.partial",
        {"stages": [{"percentage_bp": 100}]},
        format="json",
    )
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "soak_minutes" in str(response.json()["details"]["fields"]["stages"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/contacts/requests?direction=", "direction"),
        ("/api/contacts/search?q=", "q"),
        ("/api/messaging/conversations/{chat}/messages?before=", "before"),
        ("/api/messaging/conversations/{chat}/messages?limit=", "limit"),
        ("/api/official/search?q=", "q"),
    ],
)
def test_query_parameters__given_empty__are_refused_not_read_as_left_out(
    path: str, name: str
) -> None:
    # given: a user with a pending request and a chat
    alice, bob = make_user(), make_user()
    make_friends(alice, bob)
    send_request(make_user(), alice)
    api = client_of(alice)
    chat = api.post("/api/messaging/conversations/direct", {"user_id": bob.pk}, format="json")
    # when: a parameter is sent with no value (the schema documents a value)
    response = api.get(path.format(chat=chat.json()["conversation"]["id"]))
    # then: a clear error naming it, as for `page=`
    assert response.status_code == 400
    assert list(response.json()["details"]["fields"]) == [name]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_long_poll__wrong_method__is_405_with_allow(asgi_servers: list[ServerProcess]) -> None:
    headers = login_session(make_user()).headers
    response = httpx.post(f"{asgi_servers[0].url}/api/messaging/sync", headers=headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert response.json()["code"] == "method_not_allowed"
