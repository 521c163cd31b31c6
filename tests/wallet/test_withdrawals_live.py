"""Withdrawals end to end: our API on daphne, the Celery worker sending transfers to
the payment sandbox, and beat asking about the ones whose outcome is unknown."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from devtools.processes import ServerProcess
from tests.factories import fund_wallet, login_session, make_user
from tests.support.paysandbox import Sandbox
from wallet.reconcile import wallet_reconcile

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _withdraw(client: httpx.Client, amount: int) -> dict[str, Any]:
    response = client.post(
        "/api/wallet/withdrawals", json={"client_id": str(uuid.uuid4()), "amount": amount}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _wait_for_status(client: httpx.Client, withdrawal_id: int, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        withdrawal = client.get(f"/api/wallet/withdrawals/{withdrawal_id}").json()
        if withdrawal["status"] == status:
            return dict(withdrawal)
        if time.monotonic() > deadline:
            raise AssertionError(f"withdrawal {withdrawal}, expected {status}")
        time.sleep(0.1)


@pytest.fixture
def client(wallet_server: ServerProcess) -> httpx.Client:
    alice = make_user()
    fund_wallet(alice, 10_000)
    return httpx.Client(
        base_url=wallet_server.url, headers=login_session(alice).headers, timeout=15
    )


def test_withdrawal__paid_out_by_the_worker__succeeds(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    # when
    withdrawal = _withdraw(client, 2500)
    # then: held at once, paid out by the worker
    assert client.get("/api/wallet").json()["balance"] == 7500
    done = _wait_for_status(client, withdrawal["id"], "succeeded")
    assert done["finished_at"] is not None
    assert [t["amount"] for t in sandbox.transfers()] == [2500]
    history = client.get("/api/wallet/history").json()["results"]
    assert (history[0]["kind"], history[0]["amount"]) == ("withdrawal", -2500)
    assert wallet_reconcile().ok


def test_withdrawal__refused_by_the_provider__is_refunded(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    sandbox.faults(fail_transfers=["V2_ACCOUNT_SIMPLE_BAN"])
    withdrawal = _withdraw(client, 2500)
    done = _wait_for_status(client, withdrawal["id"], "failed")
    assert done["failure_code"] == "V2_ACCOUNT_SIMPLE_BAN"
    assert client.get("/api/wallet").json()["balance"] == 10_000
    history = client.get("/api/wallet/history").json()["results"]
    assert [(m["kind"], m["amount"]) for m in history[:2]] == [
        ("withdrawal_refund", 2500),
        ("withdrawal", -2500),
    ]
    assert history[0]["reason"].startswith("Withdrawal refunded: V2_ACCOUNT_SIMPLE_BAN")
    assert wallet_reconcile().ok


def test_withdrawal__outcome_unknown__is_settled_once_beat_asks(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    sandbox.faults(unknown_transfers=["SUCCESS"])
    withdrawal = _withdraw(client, 1000)
    _wait_for_status(client, withdrawal["id"], "processing")
    _wait_for_status(client, withdrawal["id"], "succeeded")
    assert client.get("/api/wallet").json()["balance"] == 9000
    assert len(sandbox.transfers()) == 1


def test_withdrawal__more_than_the_balance__is_409_insufficient_funds(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    response = client.post("/api/wallet/withdrawals", json={"client_id": "x", "amount": 10_001})
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_funds"
    assert client.get("/api/wallet").json()["balance"] == 10_000
