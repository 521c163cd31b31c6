"""WeChat IDs through one allocation authority (issue 17; DESIGN.md §9).

The authority's endpoint is called here in-process; the two-data-centre claim
is in tests/wechat_core/test_replication_live.py.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User, WeChatIdClaim
from accounts.services.wechat_ids import authority_signature
from tests.factories import login_session, make_user

pytestmark = pytest.mark.django_db

SECRET = "between-data-centres"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when we return


def claim_at_authority(user_id: int, wechat_id: str, *, signed: bool = True) -> Any:
    body = json.dumps({"wechat_id": wechat_id, "user_id": user_id, "datacenter": "hk"}).encode()
    signature = authority_signature(body) if signed else "x"
    return APIClient().post(
        "/api/internal/wechat-ids",
        body,
        content_type="application/json",
        headers={"X-Datacenter-Signature": signature},
    )


def test_claim__with_the_authority_unreachable__fails_clearly_and_nothing_else_is_affected() -> (
    None
):
    session = login_session(make_user())
    client = APIClient(headers=session.headers)
    with override_settings(
        WECHAT_ID_AUTHORITY_URL=f"http://127.0.0.1:{closed_port()}",
        WECHAT_ID_AUTHORITY_TIMEOUT_SECONDS=1.0,
    ):
        refused = client.put("/api/accounts/me/wechat-id", {"wechat_id": "far_away"}, format="json")
        renamed = client.patch("/api/accounts/me", {"nickname": "Still here"}, format="json")
    assert refused.status_code == 503, refused.json()
    assert refused.json()["code"] == "wechat_id_authority_unreachable"
    assert User.objects.get(pk=session.user.pk).wechat_id is None
    assert renamed.status_code == 200
    assert User.objects.get(pk=session.user.pk).nickname == "Still here"


@override_settings(DATACENTER_SECRET=SECRET)
def test_authority__claims_a_signed_request_once_ignoring_case() -> None:
    first, second = make_user(), make_user()

    assert claim_at_authority(first.pk, "Shared_Id").status_code == 201
    taken = claim_at_authority(second.pk, "shared_id")

    assert taken.status_code == 409
    assert taken.json()["code"] == "wechat_id_taken"
    assert WeChatIdClaim.objects.get(normalized="shared_id").user_id == first.pk


@override_settings(DATACENTER_SECRET=SECRET)
def test_authority__refuses_an_unsigned_request() -> None:
    user = make_user()
    response = claim_at_authority(user.pk, "sneaky", signed=False)
    assert response.status_code == 403
    assert not WeChatIdClaim.objects.filter(normalized="sneaky").exists()
