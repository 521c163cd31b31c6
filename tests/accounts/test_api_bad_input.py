"""Bad input on every endpoint gets a 4xx JSON error and loses nothing already accepted.

For each endpoint that takes a body: malformed JSON, a non-object body, missing
fields, every field with the wrong type, every string field oversized, a body
over the size limit, and a wrong content type. For each endpoint with an id in
its path: unknown ids. After each bad request the data is as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Block, Device, FriendRequest, Friendship, Ticket, User, WeChatIdClaim
from tests.factories import device_json, login_session, make_friends, make_user, send_request

pytestmark = pytest.mark.django_db


@dataclass
class World:
    alice_headers: dict[str, str]
    ids: dict[str, int]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)
    auth: bool = True
    required: tuple[str, ...] = ()

    def url(self, world: World) -> str:
        return self.path.format(**world.ids)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


REGISTRATION = {
    "email": "new@example.com",
    "phone": "+8613900000077",
    "password": "a-fine-passphrase",
    "nickname": "New",
    "device": device_json(),
}
LOGIN = {
    "identifier": "alice@example.com",
    "password": "correct-horse-battery",
    "device": device_json(),
}
PROFILE = {
    "nickname": "Al",
    "region": "Paris",
    "signature": "hi",
    "discoverable_by_phone": True,
    "discoverable_by_wechat_id": False,
}
BODY_ENDPOINTS = [
    Endpoint("POST", "/api/accounts/register", REGISTRATION, auth=False,
             required=("password", "nickname", "device")),
    Endpoint("POST", "/api/accounts/login", LOGIN, auth=False,
             required=("identifier", "password", "device")),
    Endpoint("PATCH", "/api/accounts/me", PROFILE),
    Endpoint("PUT", "/api/accounts/me/wechat-id", {"wechat_id": "alice_2026"},
             required=("wechat_id",)),
    Endpoint("POST", "/api/contacts/requests", {"to_user_id": "{carol}", "greeting": "hello"},
             required=("to_user_id",)),
    Endpoint("POST", "/api/contacts/requests/{request}/accept", {"remark": "Dave"}),
    Endpoint("PATCH", "/api/contacts/friends/{bob}", {"remark": "Bobby"}, required=("remark",)),
]  # fmt: skip

ID_ENDPOINTS = [
    Endpoint("DELETE", "/api/accounts/devices/{id}"),
    Endpoint("GET", "/api/contacts/friends/{id}"),
    Endpoint("PATCH", "/api/contacts/friends/{id}", body={"remark": "x"}),
    Endpoint("DELETE", "/api/contacts/friends/{id}"),
    Endpoint("POST", "/api/contacts/requests/{id}/accept"),
    Endpoint("POST", "/api/contacts/requests/{id}/decline"),
    Endpoint("PUT", "/api/contacts/blocks/{id}"),
    Endpoint("DELETE", "/api/contacts/blocks/{id}"),
]

QUERY_CASES = [
    ("/api/contacts/search", {}),
    ("/api/contacts/search", {"q": "x" * 255}),
    ("/api/contacts/requests", {"direction": "sideways"}),
    ("/api/contacts/friends", {"page": "999"}),
    ("/api/contacts/friends", {"page": "-1"}),
]

WRONG_TYPES: dict[type, list[Any]] = {
    str: [123, 1.5, True, None, [], {}],
    bool: ["true", 1, None, [], {}],
    int: ["12", 1.5, True, None, [], {}, 0, -5, 2**70],
    dict: ["web", 1, True, None, []],
}


@pytest.fixture
def world() -> World:
    alice = make_user(nickname="Alice", email="alice@example.com")
    bob, carol, dave = make_user(), make_user(), make_user()
    make_friends(alice, bob)
    request = send_request(dave, alice)
    return World(
        alice_headers=login_session(alice).headers,
        ids={"bob": bob.pk, "carol": carol.pk, "request": request.pk},
    )


def state() -> dict[str, Any]:
    """Everything a bad request must not change."""
    return {
        "users": list(User.objects.order_by("pk").values()),
        "friendships": list(Friendship.objects.order_by("pk").values()),
        "requests": list(FriendRequest.objects.order_by("pk").values()),
        "blocks": Block.objects.count(),
        "claims": WeChatIdClaim.objects.count(),
        "devices": Device.objects.count(),
        "live_tickets": Ticket.objects.filter(revoked_at__isnull=True).count(),
    }


def send(endpoint: Endpoint, world: World, *, raw: bytes | None = None, payload: Any = None,
         content_type: str = "application/json", url: str | None = None) -> Any:  # fmt: skip
    client = APIClient(headers=world.alice_headers if endpoint.auth else {})
    data = raw if raw is not None else (b"" if payload is None else json.dumps(payload))
    # Django sends bytes as they are (the malformed-UTF-8 cases need that); its stubs say str.
    return client.generic(endpoint.method, url or endpoint.url(world), data, content_type)  # type: ignore[arg-type]


def resolve(body: dict[str, Any], world: World) -> dict[str, Any]:
    """Replace "{name}" placeholders with the ids of the world's objects."""
    return {
        key: world.ids[value[1:-1]]
        if isinstance(value, str) and value[:1] + value[-1:] == "{}"
        else value
        for key, value in body.items()
    }


def assert_json_4xx(response: Any, *, status: int | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.json()
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert isinstance(body["code"], str)
    assert body["message"]
    return dict(body)


def bad_bodies(endpoint: Endpoint) -> list[tuple[str, Any]]:
    """(label, body) pairs: missing required fields, wrong types, oversized strings."""
    cases: list[tuple[str, Any]] = [("empty object", {})] if endpoint.required else []
    for name in endpoint.required:
        cases.append((f"missing {name}", {k: v for k, v in endpoint.body.items() if k != name}))
    for name, value in endpoint.body.items():
        kind = int if isinstance(value, str) and value.startswith("{") else type(value)
        for wrong in WRONG_TYPES[kind]:
            cases.append((f"{name}={wrong!r}", {**endpoint.body, name: wrong}))
        if kind is str:
            cases.append((f"{name} oversized", {**endpoint.body, name: "x" * 5000}))
        if kind is dict:
            for inner, inner_value in value.items():
                for wrong in WRONG_TYPES[type(inner_value)][:3]:
                    cases.append(
                        (
                            f"{name}.{inner}={wrong!r}",
                            {**endpoint.body, name: {**value, inner: wrong}},
                        )
                    )
                cases.append(
                    (
                        f"{name}.{inner} oversized",
                        {**endpoint.body, name: {**value, inner: "x" * 5000}},
                    )
                )
    return cases


BODY_CASES = [
    pytest.param(endpoint, label, body, id=f"{endpoint} {label}")
    for endpoint in BODY_ENDPOINTS
    for label, body in bad_bodies(endpoint)
]


@pytest.mark.parametrize(("endpoint", "label", "body"), BODY_CASES)
def test_body__missing_wrong_type_or_oversized__is_400_and_changes_nothing(
    world: World, endpoint: Endpoint, label: str, body: dict[str, Any]
) -> None:
    before = state()
    response = send(endpoint, world, payload=resolve(body, world))
    assert_json_4xx(response, status=400)
    assert state() == before


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=str)
@pytest.mark.parametrize(
    ("label", "raw"),
    [("truncated", b'{"a": '), ("not json", b"hello"), ("trailing comma", b'{"a": 1,}'),
     ("NaN", b'{"a": NaN}'), ("invalid utf-8", b'{"a": "\xff\xfe"}')],
)  # fmt: skip
def test_body__malformed_json__is_400_malformed_request(
    world: World, endpoint: Endpoint, label: str, raw: bytes
) -> None:
    before = state()
    body = assert_json_4xx(send(endpoint, world, raw=raw), status=400)
    assert body["code"] == "malformed_request"
    assert state() == before


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=str)
@pytest.mark.parametrize("payload", [[], ["a"], "a string", 42, None])
def test_body__json_that_is_not_an_object__is_400(
    world: World, endpoint: Endpoint, payload: Any
) -> None:
    before = state()
    response = send(endpoint, world, raw=json.dumps(payload).encode())
    if endpoint.method == "PATCH" and payload is None:
        # `null` is an empty update of the optional fields; it must still change nothing bad
        assert response.status_code in (200, 400)
    else:
        assert_json_4xx(response, status=400)
    assert state()["friendships"] == before["friendships"]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=str)
def test_body__over_the_size_limit__is_413(world: World, endpoint: Endpoint, settings: Any) -> None:
    before = state()
    padding = "x" * (settings.API_MAX_BODY_BYTES + 1)
    oversized = {**resolve(endpoint.body, world), "padding": padding}
    body = assert_json_4xx(send(endpoint, world, payload=oversized), status=413)
    assert body["code"] == "payload_too_large"
    assert state() == before


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=str)
def test_body__wrong_content_type__is_415(world: World, endpoint: Endpoint) -> None:
    before = state()
    raw = json.dumps(resolve(endpoint.body, world)).encode()
    body = assert_json_4xx(send(endpoint, world, raw=raw, content_type="text/plain"), status=415)
    assert body["code"] == "unsupported_media_type"
    assert state() == before


@pytest.mark.parametrize("endpoint", ID_ENDPOINTS, ids=str)
@pytest.mark.parametrize("unknown", ["999999999", "999999999999999999", "99999999999999999999999"])
def test_path__unknown_or_overflowing_id__is_404(
    world: World, endpoint: Endpoint, unknown: str
) -> None:
    before = state()
    url = endpoint.path.format(id=unknown)
    response = send(endpoint, world, url=url, payload=endpoint.body or None)
    assert_json_4xx(response, status=404)
    assert state() == before


@pytest.mark.parametrize(("path", "params"), QUERY_CASES)
def test_query__missing_invalid_or_out_of_range__is_4xx(
    world: World, path: str, params: dict[str, str]
) -> None:
    response = APIClient(headers=world.alice_headers).get(path, params)
    assert_json_4xx(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/accounts/me"),
        ("GET", "/api/accounts/login"),
        ("PUT", "/api/contacts/friends"),
    ],
)
def test_method__not_allowed__is_405(world: World, method: str, path: str) -> None:
    response = APIClient(headers=world.alice_headers).generic(method, path)
    assert assert_json_4xx(response, status=405)["code"] == "method_not_allowed"


@pytest.mark.parametrize("endpoint", [e for e in BODY_ENDPOINTS if e.auth] + ID_ENDPOINTS, ids=str)
def test_auth__no_ticket__is_401_and_changes_nothing(world: World, endpoint: Endpoint) -> None:
    before = state()
    client = APIClient()
    url = endpoint.path.format(**world.ids, id=world.ids["bob"])
    response = client.generic(endpoint.method, url, "{}", "application/json")
    assert assert_json_4xx(response, status=401)["code"] == "not_authenticated"
    assert state() == before


def test_unknown_api_path__is_404_json(world: World) -> None:
    assert_json_4xx(APIClient().get("/api/no/such/thing"), status=404)


def test_content_length_that_is_not_a_number__is_400(world: World) -> None:
    response = APIClient(headers=world.alice_headers).generic(
        "PATCH", "/api/accounts/me", "{}", "application/json", CONTENT_LENGTH="many"
    )
    assert_json_4xx(response, status=400)


def test_multipart_with_too_many_fields__is_a_json_400(world: World) -> None:
    fields = {f"f{n}": "x" for n in range(1200)} | {"kind": "file"}
    response = APIClient(headers=world.alice_headers).post(
        "/api/messaging/uploads", fields, format="multipart"
    )
    assert assert_json_4xx(response, status=400)["code"] == "malformed_request"


@pytest.mark.parametrize(
    "query", ["page=", "page=abc", "page=0", "page=-1", "page_size=", "page_size=0", "page=%D9%A3"]
)
def test_list__page_or_page_size_not_a_positive_integer__is_refused_400(query: str) -> None:
    # given: a user with devices (a paginated list)
    alice = make_user(email="alice@example.com")
    session = login_session(alice)
    # when
    response = APIClient().get(f"/api/accounts/devices?{query}", headers=session.headers)
    # then: refused, naming the parameter, instead of silently serving page 1
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "invalid")
    assert list(body["details"]["fields"]) == [query.split("=")[0]]
