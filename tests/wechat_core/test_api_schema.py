"""The OpenAPI schema, and fuzzing every operation it describes.

Schemathesis reads /api/schema/ from a real daphne process, generates requests
(valid and invalid ones) and sends them with a real ticket. No request may
produce a 5xx,
every answer must match the documented schemas (errors included), and data
that breaks the schema must be refused.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import login_session, make_friends, make_user, send_request
from tests.support.processes import ServerProcess

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def api_schema(transactional_db: None, asgi_servers: list[ServerProcess]) -> Any:
    schema = schemathesis.openapi.from_url(f"{asgi_servers[0].url}/api/schema/")
    # The fixture's ticket is sent on every request, so schemathesis must not
    # generate (or drop) the Authorization header itself; unknown query
    # parameters are ignored by design, as most HTTP APIs do.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    # Logging out would only make the remaining examples unauthenticated;
    # logout is covered by its own tests.
    return schema.exclude(path_regex="logout")


@pytest.fixture
def fuzz_headers(transactional_db: None) -> dict[str, str]:
    alice = make_user(email="alice@example.com", wechat_id="alice_fuzz")
    make_friends(alice, make_user())
    send_request(make_user(), alice)
    return login_session(alice).headers


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.django_db
def test_schema__is_served_and_names_every_api_path() -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/accounts/login", "/api/accounts/me", "/api/contacts/friends",
                 "/api/contacts/requests/{request_id}/accept", "/api/topology"):  # fmt: skip
        assert path in paths
    assert response.json()["components"]["securitySchemes"]["ticket"]["name"] == "Authorization"


@pytest.mark.live
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api__fuzzed_requests__never_fail_on_our_side_and_match_the_schema(
    case: Any, fuzz_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=fuzz_headers, checks=CHECKS)
