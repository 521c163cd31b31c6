"""The wallet's HTTP API: shapes, pagination, errors as {code, message, details}."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import fund_wallet, login_session, login_ticket, make_user
from tests.support.paysandbox import Sandbox
from wallet.models import TopUp, TransactionKind
from wallet.services.ledger import escrow_account_open
from wallet.services.wallets import wallet_credit, wallet_spend

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> tuple[Any, APIClient]:
    user = make_user(nickname="Alice")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Ticket {login_session(user).token}")
    return user, client


def test_wallet__new_user__has_a_zero_balance_and_the_limits(alice: tuple[Any, APIClient]) -> None:
    _, client = alice
    body = client.get("/api/wallet").json()
    assert body == {
        "balance": 0,
        "currency": "CNY",
        "payments_available": True,
        "limits": {
            "topup_min": 1,
            "topup_max": 500_000,
            "topup_max_per_day": 2_000_000,
            "topup_used_today": 0,
            "withdrawal_min": 30,
            "withdrawal_max": 2_000_000,
            "withdrawal_max_per_day": 5_000_000,
            "withdrawal_used_today": 0,
        },
    }


def test_wallet_history__newest_first_with_reasons_and_pages(alice: tuple[Any, APIClient]) -> None:
    # given: a top-up, and three shares of Bob's red packet received
    user, client = alice
    fund_wallet(user, 1000)
    bob = make_user()
    fund_wallet(bob, 900)
    escrow = escrow_account_open(reference="redpacket:api")
    wallet_spend(
        ticket=login_ticket(bob),
        user_id=bob.pk,
        to_account_id=escrow.pk,
        amount=900,
        idempotency_key="api-send",
        kind=TransactionKind.PACKET_SEND,
        reason="Red packet",
    )
    for n in (1, 2, 3):
        wallet_credit(
            user_id=user.pk,
            from_account_id=escrow.pk,
            amount=n * 100,
            idempotency_key=f"api-grab-{n}",
            kind=TransactionKind.PACKET_GRAB,
            reason=f"Red packet from Bob #{n}",
        )
    # when
    first = client.get("/api/wallet/history", {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    # then
    assert first["count"] == 4
    rows = first["results"] + second["results"]
    assert [(r["kind"], r["reason"], r["amount"]) for r in rows] == [
        ("packet_grab", "Red packet from Bob #3", 300),
        ("packet_grab", "Red packet from Bob #2", 200),
        ("packet_grab", "Red packet from Bob #1", 100),
        ("topup", "Top-up", 1000),
    ]
    assert set(rows[0]) == {"id", "transaction", "kind", "reason", "amount", "created_at"}
    assert client.get("/api/wallet").json()["balance"] == 1600


def test_wallet_history__another_users_movements__never_show(alice: tuple[Any, APIClient]) -> None:
    _, client = alice
    fund_wallet(make_user(), 500)
    assert client.get("/api/wallet/history").json()["count"] == 0


def test_topups__create_then_read__answers_the_pay_page(
    alice: tuple[Any, APIClient], sandbox: Sandbox
) -> None:
    _, client = alice
    created = client.post("/api/wallet/topups", {"client_id": "t-1", "amount": 990}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {
        "id", "client_id", "amount", "status", "pay_url", "failure_reason", "created_at",
        "paid_at",
    }  # fmt: skip
    assert (body["status"], body["amount"], body["paid_at"]) == ("pending", 990, None)
    assert client.get(f"/api/wallet/topups/{body['id']}").json() == body


def test_topups__someone_elses__is_404_topup_not_found(
    alice: tuple[Any, APIClient], sandbox: Sandbox
) -> None:
    _, client = alice
    bob = make_user()
    bobs = APIClient()
    bobs.credentials(HTTP_AUTHORIZATION=f"Ticket {login_session(bob).token}")
    created = bobs.post("/api/wallet/topups", {"client_id": "b", "amount": 100}, format="json")
    response = client.get(f"/api/wallet/topups/{created.json()['id']}")
    assert response.status_code == 404
    assert response.json()["code"] == "topup_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"client_id": "x", "amount": "100"}, "amount"),
        ({"client_id": "x", "amount": 1.5}, "amount"),
        ({"client_id": "x", "amount": 0}, "amount"),
        ({"client_id": "x", "amount": True}, "amount"),
        ({"client_id": "", "amount": 100}, "client_id"),
        ({"client_id": "x" * 65, "amount": 100}, "client_id"),
        ({"amount": 100}, "client_id"),
    ],
)
@pytest.mark.parametrize("path", ["/api/wallet/topups", "/api/wallet/withdrawals"])
def test_orders__bad_input__is_400_invalid_naming_the_field(
    alice: tuple[Any, APIClient], path: str, body: dict[str, Any], field: str
) -> None:
    _, client = alice
    response = client.post(path, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["details"]["fields"]


def test_topups__over_the_limit__is_400_amount_out_of_range(
    alice: tuple[Any, APIClient], sandbox: Sandbox
) -> None:
    _, client = alice
    response = client.post(
        "/api/wallet/topups", {"client_id": "big", "amount": 500_001}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "amount_out_of_range",
        "message": "The amount must be between 1 and 500000 fen.",
        "details": {"min": 1, "max": 500_000},
    }
    assert not TopUp.objects.exists()


def test_topups__provider_not_configured__is_503_payments_unavailable(
    alice: tuple[Any, APIClient], settings: Any
) -> None:
    _, client = alice
    settings.PAY_MCH_KEY = ""
    response = client.post("/api/wallet/topups", {"client_id": "x", "amount": 100}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "payments_unavailable"
    assert client.get("/api/wallet").json()["payments_available"] is False


def test_withdrawals__create_and_read(alice: tuple[Any, APIClient], sandbox: Sandbox) -> None:
    user, client = alice
    fund_wallet(user, 500)
    created = client.post(
        "/api/wallet/withdrawals", {"client_id": "w", "amount": 200}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["status"], body["amount"], body["failure_code"]) == ("pending", 200, "")
    assert client.get(f"/api/wallet/withdrawals/{body['id']}").json() == body
    again = client.post("/api/wallet/withdrawals", {"client_id": "w", "amount": 200}, format="json")
    assert (again.status_code, again.json()) == (200, body)
    assert client.get("/api/wallet").json()["limits"]["withdrawal_used_today"] == 200
    assert client.get("/api/wallet/withdrawals/999999").json()["code"] == "withdrawal_not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/wallet"), ("get", "/api/wallet/history"), ("post", "/api/wallet/topups"),
     ("get", "/api/wallet/topups/1"), ("post", "/api/wallet/withdrawals")],
)  # fmt: skip
def test_wallet_api__without_a_ticket__is_401(method: str, path: str) -> None:
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_pay_notify__get__is_refused() -> None:
    assert APIClient().get("/api/wallet/pay/notify").status_code == 405
