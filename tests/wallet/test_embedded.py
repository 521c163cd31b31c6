"""The wallet in the embedded mode of `make run`: SQLite with the ledger's triggers and
CHECKs, daphne with Celery in-process, and the payment sandbox beside it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from devtools.processes import free_port, start_asgi_server
from tests.support.embedded import embedded_env, manage
from tests.support.paysandbox import start_paysandbox

KEY = "embedded-merchant-key-0123456789"
# Raw SQL against the ledger, as a bug or a hand at the SQLite shell would write it.
TAMPER = """
from django.db import connection, transaction
from wallet.models import TransactionKind
from wallet.services.ledger import clearing_account_open, escrow_account_open, ledger_transfer
from wallet.types import Leg
clearing, escrow = clearing_account_open(), escrow_account_open(reference="redpacket:e")
ledger_transfer(idempotency_key="e-1", kind=TransactionKind.ADJUSTMENT, reason="r",
                legs=[Leg(clearing.pk, -100), Leg(escrow.pk, 100)])
for statement in (
    "UPDATE wallet_posting SET amount = 1",
    "DELETE FROM wallet_posting",
    "UPDATE wallet_ledgertransaction SET reason = 'x'",
    "UPDATE wallet_ledgeraccount SET balance = 999 WHERE reference = 'redpacket:e'",
    "INSERT INTO wallet_ledgeraccount (kind, reference, balance, may_go_negative, created_at)"
    " VALUES ('escrow', 'rich', 5, 0, '2026-01-01')",
    f"INSERT INTO wallet_posting (transaction_id, account_id, amount)"
    f" SELECT id, {escrow.pk}, -500 FROM wallet_ledgertransaction",
):
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
        print("ALLOWED", statement)
    except Exception as error:
        print("REFUSED", type(error).__name__, error)
escrow.refresh_from_db()
print("BALANCE", escrow.balance)
"""


@pytest.mark.live
def test_embedded_wallet__sqlite_triggers__refuse_rewriting_the_ledger(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    manage(env, "migrate", "--noinput")
    out = manage(env, "shell", "--no-imports", "-c", TAMPER)
    assert "ALLOWED" not in out
    assert out.count("REFUSED IntegrityError") == 6, out
    assert "BALANCE 100" in out


@pytest.mark.live
def test_embedded_wallet__top_up_and_withdraw_through_the_sandbox(tmp_path: Path) -> None:
    # given: the embedded mode with demo data, the sandbox beside it
    sandbox = start_paysandbox(log_dir=tmp_path, key=KEY)
    port = free_port()
    env = embedded_env(
        tmp_path,
        PAY_MCH_KEY=KEY,
        PAY_PROVIDER_URL=sandbox.url,
        PAY_NOTIFY_URL=f"http://127.0.0.1:{port}/api/wallet/pay/notify",
    )
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"], ["createdemo"]):
        manage(env, *command)
    server = start_asgi_server(log_dir=tmp_path, env=env, name="embedded-wallet", port=port)
    try:
        body = {"identifier": "alice@example.com", "password": "alice-demo-2026",
                "device": {"platform": "web", "client_version": "3.0.0", "name": "t"}}  # fmt: skip
        login = httpx.post(f"{server.url}/api/accounts/login", json=body, timeout=10)
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Ticket {login.json()['ticket']}"}
        )
        # when: Alice tops up 50 CNY and pays on the sandbox's page
        topup = client.post("/api/wallet/topups", json={"client_id": "e", "amount": 5000}).json()
        prepay_id = topup["pay_url"].split("prepay_id=")[1]
        httpx.post(f"{sandbox.url}/pay/page", data={"prepay_id": prepay_id}, timeout=10)
        deadline, balance = time.monotonic() + 30, 0
        while balance != 5000 and time.monotonic() < deadline:
            time.sleep(0.1)
            balance = client.get("/api/wallet").json()["balance"]
        # and withdraws 10 CNY (the transfer runs in-process, right after the commit)
        withdrawal = client.post("/api/wallet/withdrawals", json={"client_id": "w", "amount": 1000})
        after = client.get(f"/api/wallet/withdrawals/{withdrawal.json()['id']}").json()
        wallet = client.get("/api/wallet").json()
    finally:
        server.stop()
        sandbox.stop()
    # then
    assert balance == 5000
    assert withdrawal.status_code == 201
    assert after["status"] == "succeeded"
    assert wallet["balance"] == 4000
    assert '"ok": true' in manage(env, "wallet_reconcile")
