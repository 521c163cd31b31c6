"""The flags endpoint, flags in the login answer, and the operators' feature API
(staff only; bad input refused with a clear message)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from grayrelease.models import Feature, FeatureChange
from tests.factories import device_json, login_session, make_feature, make_user

pytestmark = pytest.mark.django_db


def user_client(**device: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Ticket {login_session(make_user(), **device).token}")
    return client


def test_login__answer__carries_the_devices_flags() -> None:
    # given: a web-only feature at 100 %, and one the client never sees
    make_feature("web.login", client_visible=True, percentage_bp=10_000, platforms=("web",))
    make_feature("server.login", percentage_bp=10_000)
    make_user(email="lena@example.com")
    body = {"identifier": "lena@example.com", "password": "correct-horse-battery"}
    # when: she logs in from a browser, then from a phone
    web = APIClient().post("/api/accounts/login", {**body, "device": device_json()}, format="json")
    phone = APIClient().post(
        "/api/accounts/login", {**body, "device": device_json(platform="ios")}, format="json"
    )
    # then
    assert web.json()["flags"] == {"web.login": {"enabled": True, "revision": 1}}
    assert phone.json()["flags"] == {"web.login": {"enabled": False, "revision": 1}}


def test_flags__get__answers_for_the_current_device() -> None:
    make_feature("web.get", client_visible=True, percentage_bp=10_000, platforms=("android",))
    assert user_client(platform="android").get("/api/flags").json() == {
        "flags": {"web.get": {"enabled": True, "revision": 1}}
    }
    assert user_client().get("/api/flags").json()["flags"]["web.get"]["enabled"] is False
    assert APIClient().get("/api/flags").status_code == 401


def test_operator_api__chat_users__are_refused() -> None:
    make_feature("web.private")
    client = user_client()
    for method, path in (
        ("get", "/api/grayrelease/features"),
        ("post", "/api/grayrelease/features"),
        ("patch", "/api/grayrelease/features/web.private"),
        ("post", "/api/grayrelease/features/web.private/kill-switch"),
    ):
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code == 403, path
        assert response.json()["code"] == "forbidden"
    assert APIClient().get("/api/grayrelease/features").status_code == 401


def test_operator_api__create_edit_kill_schedule_delete__each_audited(operator: APIClient) -> None:
    # when: created
    created = operator.post(
        "/api/grayrelease/features",
        {
            "key": "web.api",
            "client_visible": True,
            "percentage_bp": 100,
            "version_ranges": [{"min_version": "2.0.0", "max_version": None}],
            "stages": [
                {"percentage_bp": 100, "soak_minutes": 60},
                {"percentage_bp": 10000, "soak_minutes": 0},
            ],
            "comment": "new search",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["version_ranges"] == [{"min_version": "2.0.0", "max_version": None}]
    # edited (PATCH keeps what it does not name), with the revision read
    patched = operator.patch(
        "/api/grayrelease/features/web.api", {"percentage_bp": 500, "revision": 1}, format="json"
    )
    assert (patched.json()["percentage_bp"], patched.json()["revision"]) == (500, 2)
    assert patched.json()["client_visible"] is True
    # a stale revision is refused
    stale = operator.patch(
        "/api/grayrelease/features/web.api", {"percentage_bp": 900, "revision": 1}, format="json"
    )
    assert (stale.status_code, stale.json()["code"]) == (409, "feature_changed")
    # killed, revived, scheduled
    killed = operator.post(
        "/api/grayrelease/features/web.api/kill-switch",
        {"killed": True, "comment": "errors"},
        format="json",
    )
    assert killed.json()["killed"] is True
    operator.post("/api/grayrelease/features/web.api/kill-switch", {"killed": False}, format="json")
    started = operator.post(
        "/api/grayrelease/features/web.api/schedule", {"action": "start"}, format="json"
    )
    assert started.json()["schedule"]["status"] == "completed"  # 5 % > 1 %: straight to 100 %
    # the trail lists it all, with who
    changes = operator.get("/api/grayrelease/features/web.api/changes").json()
    assert [c["action"] for c in changes["results"]] == [
        "schedule_started",
        "revived",
        "killed",
        "updated",
        "created",
    ]
    assert {c["actor_label"].split(" ")[0] for c in changes["results"]} == {"Oscar"}
    assert changes["results"][2]["comment"] == "errors"
    # deleted
    assert operator.delete("/api/grayrelease/features/web.api").status_code == 204
    assert operator.get("/api/grayrelease/features/web.api").json()["code"] == "feature_not_found"
    assert FeatureChange.objects.filter(feature_key="web.api").count() == 6


BAD_INPUT = [
    (
        {
            "version_ranges": [
                {"min_version": "1.0.0", "max_version": "3.0.0"},
                {"min_version": "2.0.0", "max_version": None},
            ]
        },
        "version_ranges",
        "overlap",
    ),
    ({"version_ranges": [{"min_version": "banana"}]}, "version_ranges", "semantic version"),
    ({"percentage_bp": 12000}, "percentage_bp", "between 0.00 % and 100 %"),
    ({"stages": [{"percentage_bp": 0, "soak_minutes": 5}]}, "stages", "between 0.01 %"),
    (
        {
            "time_windows": [
                {"starts_at": "2027-01-01T00:00:00Z", "ends_at": "2027-01-03T00:00:00Z"},
                {"starts_at": "2027-01-02T00:00:00Z"},
            ]
        },
        "time_windows",
        "overlap",
    ),
]


@pytest.mark.parametrize(("body", "field", "words"), BAD_INPUT)
def test_operator_api__bad_rules__are_refused_with_a_message_naming_the_field(
    operator: APIClient, body: dict[str, Any], field: str, words: str
) -> None:
    # when: created with them, or an existing feature edited with them
    make_feature("web.good", percentage_bp=100)
    created = operator.post("/api/grayrelease/features", {"key": "web.bad", **body}, format="json")
    edited = operator.patch("/api/grayrelease/features/web.good", body, format="json")
    # then: 400 invalid_rule, the field named, nothing saved
    for response in (created, edited):
        assert response.status_code == 400
        answer = response.json()
        assert (answer["code"], answer["details"]["field"]) == ("invalid_rule", field)
        assert words in answer["message"]
        assert answer["message"].startswith(f"{field}: ")
    assert not Feature.objects.filter(key="web.bad").exists()
    assert Feature.objects.get(key="web.good").revision == 1


def test_operator_api__wrong_json_types__are_refused_as_invalid(operator: APIClient) -> None:
    response = operator.post(
        "/api/grayrelease/features", {"key": "web.types", "percentage_bp": "50"}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "percentage_bp" in response.json()["details"]["fields"]


def test_operator_api__preview__counts_coverage_and_saves_nothing(operator: APIClient) -> None:
    # given: 3 users signed in on iOS, 2 on the web; the saved feature reaches nobody
    for platform in ("ios", "ios", "ios", "web", "web"):
        login_session(make_user(), platform=platform)
    make_feature("web.preview", percentage_bp=0)
    # when: previewing "every iOS user"
    answer = operator.post(
        "/api/grayrelease/preview",
        {"key": "web.preview", "percentage_bp": 10000, "platforms": ["ios"]},
        format="json",
    ).json()
    # then: (the operator's own session is on the web too)
    assert (answer["population_users"], answer["enabled_users"]) == (6, 3)
    rules = {r["rule"]: r["users"] for r in answer["rules"]}
    assert rules == {"platforms": 3, "percentage": 6}
    assert (answer["current_enabled_users"], answer["gained_users"], answer["lost_users"]) == (
        0,
        3,
        0,
    )
    assert Feature.objects.get(key="web.preview").percentage_bp == 0
