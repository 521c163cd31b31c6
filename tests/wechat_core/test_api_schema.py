"""The OpenAPI schema, and fuzzing every operation it describes against real servers.

Schemathesis reads /api/schema/ from a running server and sends what it
generates from it, valid and invalid requests, with the ticket of a real user
(an operator, so that the operators' API is reached too). When a request ends
that ticket (logout, removing the device), the next request logs in again and
is replayed, so every operation keeps being tried with a live ticket. No answer
may be a 5xx, every answer must match its operation's schema (errors included),
data that breaks the schema must be refused, and a request without the ticket
must be refused.

The stateful test runs schemathesis's engine, as its CLI does, over sequences
of calls that follow the schema's links, declared (a friend into the chat with
them, a chat into a send, a sent message into recall, read and history) and
inferred (a created group's id into the group's operations, a friend request
into accept and decline, a created feature into its operations, ...), so that
operations on objects that exist are tried too, not only 404s.

Examples are bounded (and derandomized) so that both fuzzing tests together
take well under two minutes on a small machine; the CLI runs every phase
(docs/api.md, "Checking the schema").
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import schemathesis
from django.db import connections
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.engine import Status, events
from schemathesis.openapi.checks import UseAfterFree

from accounts.models import User
from accounts.tickets import ticket_cache_clear, ticket_verify
from devtools.processes import ServerProcess
from tests.factories import login_session, make_friends, make_official_account, make_user
from tests.factories import send_request as send_friend_request
from wechat_core.errors import ServiceError

BOUNDED = settings(
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure is reproducible
    suppress_health_check=list(HealthCheck),
)


@schemathesis.check
def ticket_stays_live(ctx: Any, response: Any, case: Any) -> bool | None:
    """The ticket the test sends is never refused: if it were, every later answer
    would be a 401 that says nothing about the operation (a hollow run)."""
    sent = response.request.headers.get("Authorization", "")
    if response.status_code == 401 and sent.startswith("Ticket ") and "ticket" in response.text:
        raise AssertionError(f"The test's ticket was refused: {response.text[:200]}")
    return None


@pytest.fixture
def operator(transactional_db: None) -> User:
    """A staff user with friends (several: the fuzzer removes some), a pending
    request and an official account."""
    user = make_user(email="fuzz-operator@example.com", wechat_id="fuzz_operator")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    user.refresh_from_db()
    for _ in range(6):
        make_friends(user, make_user())
    send_friend_request(make_user(), user)
    make_official_account(name="Fuzz News")
    return user


class LiveTicket:
    """A user's ticket, renewed only once it has been refused (the fuzzer logged
    out, logged out everywhere or removed the device)."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.device = str(uuid.uuid4())  # one device: a new login revokes the old ticket
        self.token = ""

    def __call__(self) -> str:
        ticket_cache_clear()  # this process must see a revocation at once
        try:
            ticket_verify(token=self.token)
        except ServiceError:
            # Through the service, not POST /login: the fuzzer's failed logins lock
            # the loopback address out of the login endpoint.
            self.token = login_session(self.user, device_uuid=self.device).token
        finally:
            if threading.current_thread() is not threading.main_thread():
                connections.close_all()  # the engine's threads must not keep the test database open
        return self.token


def _schema(server: ServerProcess, ticket: LiveTicket) -> Any:
    schema = schemathesis.openapi.from_url(f"{server.url}/api/schema/")
    # The ticket comes from the auth provider below, so schemathesis must not
    # generate (or drop) the Authorization header itself; unknown query
    # parameters are ignored by design, as most HTTP APIs do.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    # Schema-valid requests may still break a business rule (befriend yourself, send
    # to a chat you are not in, an empty text): those answer a documented 4xx.
    schema.config.checks.update(excluded_check_names=["positive_data_acceptance"])
    # The coverage phase (every boundary value of every field: thousands of requests)
    # takes minutes; run it with the CLI (docs/api.md) before changing the schema.
    schema.config.phases.coverage.enabled = False
    # Every run starts afresh: no outcomes remembered from an earlier run (nor a
    # .schemathesis directory left in the checkout).
    schema.config.cache.enabled = False
    # Refusing data with 413 (a body over API_MAX_BODY_BYTES, which no schema states)
    # is refusing it.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]

    @schema.auth()
    class TicketAuth:
        """The live ticket; after a 401, schemathesis asks again and replays."""

        def get(self, case: Any, context: Any) -> str:
            return ticket()

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Ticket {data}"}

    @schema.hook
    def map_query(context: Any, query: Any) -> Any:
        """A long-poll waits up to `timeout` seconds (25 when left out) for news that
        never comes here: wait at most one, the rest of the query as generated."""
        if context.operation.path == "/api/messaging/sync" and isinstance(query, dict):
            timeout = query.get("timeout", 25)
            if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 1:
                query["timeout"] = 1
        return query

    return schema


@pytest.fixture
def api_schema(asgi_servers: list[ServerProcess], operator: User) -> Any:
    return _schema(asgi_servers[1], LiveTicket(operator))  # uvicorn, the production server


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.django_db
def test_schema__is_served_and_names_every_api_path() -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/accounts/login", "/api/accounts/me", "/api/contacts/friends",
                 "/api/contacts/requests/{request_id}/accept", "/api/topology",
                 "/api/messaging/sync"):  # fmt: skip
        assert path in paths
    assert response.json()["components"]["securitySchemes"]["ticket"]["name"] == "Authorization"


@pytest.mark.live
@schema.parametrize()
@settings(BOUNDED, max_examples=6)
def test_api__fuzzed_requests__never_fail_on_our_side_and_match_the_schema(case: Any) -> None:
    case.call_and_validate()


def _failures(scenario: events.ScenarioFinished) -> list[str]:
    """Every failed check of a finished scenario, as text."""
    found = []
    for case_id, checks in scenario.recorder.checks.items():
        case = scenario.recorder.cases[case_id].value
        for check in checks:
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            failure = check.failure_info.failure
            if isinstance(failure, UseAfterFree) and case.path == AUDIT_TRAIL:
                continue  # a deleted feature's audit trail stays readable, by design (api.md)
            found.append(f"{case.method} {case.formatted_path}: {failure.title}\n{failure.message}")
    return found


AUDIT_TRAIL = "/api/grayrelease/features/{key}/changes"
SESSION_ENDERS = [
    "POST /api/accounts/logout",
    "POST /api/accounts/logout-all",
    "DELETE /api/accounts/devices/{device_id}",
]


@pytest.mark.live
def test_api__stateful_sequences__never_fail_on_our_side_and_match_the_schema(
    asgi_servers: list[ServerProcess], operator: User
) -> None:
    # given: the schema with its links (declared and inferred), as the CLI runs it.
    # Steps of a sequence are not replayed after a 401 as single requests are, so
    # the operations that end the ticket are fuzzed only in the test above.
    schema = (
        _schema(asgi_servers[0], LiveTicket(operator))
        .include(tag=["contacts", "messaging", "groups", "gray release (operators)"])
        .exclude(name=SESSION_ENDERS)
    )
    phases = schema.config.phases  # daphne, `make run`'s server
    phases.examples.enabled = phases.coverage.enabled = phases.fuzzing.enabled = False
    phases.stateful.max_steps = 10
    schema.config.generation.update(max_examples=30, deterministic=True)
    # when: schemathesis's engine runs sequences of calls along the links (it
    # copes with a server whose state moves on, which hypothesis alone calls flaky)
    found: list[str] = []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status == Status.FAILURE:
            found += _failures(event)
        elif isinstance(event, events.NonFatalError):
            found.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    # then
    assert not found, "\n\n".join(found)
