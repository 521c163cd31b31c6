"""Top-ups end to end: our API on a real daphne, the payment sandbox as a real HTTP
service notifying it, and a Celery worker with beat asking about lost orders.
Duplicate, forged, replayed, wrong-amount and lost notifications."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from django.conf import settings
from wechatpy.pay.utils import calculate_signature_hmac, dict_to_xml

from devtools.processes import ServerProcess
from tests.factories import Session, login_session, make_user
from tests.support.paysandbox import Sandbox
from wallet.models import LedgerTransaction, TopUp, TopUpStatus
from wallet.reconcile import wallet_reconcile

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _client(server: ServerProcess, session: Session) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=session.headers, timeout=15)


def _top_up(client: httpx.Client, amount: int, client_id: str | None = None) -> dict[str, Any]:
    response = client.post(
        "/api/wallet/topups", json={"client_id": client_id or str(uuid.uuid4()), "amount": amount}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _wait_for_balance(
    client: httpx.Client, expected: int, timeout: float = 30, explain: Any = None
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        wallet = client.get("/api/wallet").json()
        if wallet["balance"] == expected:
            return dict(wallet)
        if time.monotonic() > deadline:
            detail = explain() if explain else ""
            raise AssertionError(f"balance {wallet['balance']}, expected {expected}\n{detail}")
        time.sleep(0.1)


def _notify(
    server: ServerProcess, topup: TopUp, *, key: str | None = None, **overrides: str
) -> dict[str, str]:
    """A payment notification as the provider's would be, signed by wechatpy's own
    implementation (with the merchant key unless told otherwise)."""
    fields = {
        "appid": settings.PAY_APPID,
        "mch_id": settings.PAY_MCH_ID,
        "nonce_str": uuid.uuid4().hex,
        "return_code": "SUCCESS",
        "result_code": "SUCCESS",
        "openid": "oTest",
        "trade_type": "MWEB",
        "bank_type": "OTHERS",
        "total_fee": str(topup.amount),
        "cash_fee": str(topup.amount),
        "fee_type": "CNY",
        "transaction_id": "4200000000000000000000000001",
        "out_trade_no": topup.out_trade_no,
        "time_end": "20260101120000",
    } | overrides
    body = dict_to_xml(fields, calculate_signature_hmac(fields, key or settings.PAY_MCH_KEY))
    response = httpx.post(f"{server.url}/api/wallet/pay/notify", content=body.encode(), timeout=10)
    assert response.status_code == 200
    from wallet.paywire import parse

    return parse(response.content)


def test_topup__paid_on_the_sandbox_pay_page__credits_the_wallet_once(
    wallet_server: ServerProcess, sandbox: Sandbox
) -> None:
    # given
    alice = make_user()
    client = _client(wallet_server, login_session(alice))
    # when: she asks for 12.34 CNY and pays on the provider's page
    topup = _top_up(client, 1234)
    page = httpx.get(topup["pay_url"], timeout=10)
    assert 'data-testid="pay-button"' in page.text
    assert "¥12.34" in page.text
    prepay_id = topup["pay_url"].split("prepay_id=")[1]
    paid = httpx.post(topup["pay_url"].split("?")[0], data={"prepay_id": prepay_id}, timeout=10)
    assert "Payment complete" in paid.text
    # then: the notification credits her, once
    wallet = _wait_for_balance(client, 1234)
    assert wallet["limits"]["topup_used_today"] == 1234
    detail = client.get(f"/api/wallet/topups/{topup['id']}").json()
    assert detail["status"] == "paid"
    history = client.get("/api/wallet/history").json()
    assert [(m["kind"], m["reason"], m["amount"]) for m in history["results"]] == [
        ("topup", "Top-up", 1234)
    ]
    stored = TopUp.objects.get(pk=topup["id"])
    order = sandbox.wait_for_order(stored.out_trade_no, lambda o: o["notified"])
    assert [a["outcome"] for a in order["attempts"]] == ["acknowledged"]
    assert stored.ledger_transaction is not None
    assert stored.ledger_transaction.metadata["via"] == "notify"
    assert wallet_reconcile().ok


def test_topup__same_client_id_again__returns_the_same_topup_or_a_conflict(
    wallet_server: ServerProcess, sandbox: Sandbox
) -> None:
    client = _client(wallet_server, login_session(make_user()))
    first = _top_up(client, 500, client_id="retry-1")
    again = client.post("/api/wallet/topups", json={"client_id": "retry-1", "amount": 500})
    other = client.post("/api/wallet/topups", json={"client_id": "retry-1", "amount": 600})
    assert again.status_code == 200
    assert again.json() == first
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert TopUp.objects.count() == 1


def test_topup__notification_sent_twice_at_once__credits_once(
    wallet_server: ServerProcess, sandbox: Sandbox
) -> None:
    # given: the provider will send the next notification twice, at the same moment
    client = _client(wallet_server, login_session(make_user()))
    topup = _top_up(client, 800)
    number = TopUp.objects.get(pk=topup["id"]).out_trade_no
    sandbox.faults(duplicate_notifies=1)
    # when
    sandbox.pay(number)
    order = sandbox.wait_for_order(number, lambda o: len(o["attempts"]) == 2)
    # then: both copies were acknowledged, the money came once
    assert [a["outcome"] for a in order["attempts"]] == ["acknowledged", "acknowledged"]
    _wait_for_balance(client, 800)
    assert LedgerTransaction.objects.filter(idempotency_key=f"topup:{topup['id']}").count() == 1
    assert wallet_reconcile().ok


def test_topup__every_notification_lost__is_recovered_by_querying_the_order(
    wallet_stack: tuple[ServerProcess, ServerProcess],
    wallet_server: ServerProcess,
    sandbox: Sandbox,
) -> None:
    # given: no notification will arrive
    client = _client(wallet_server, login_session(make_user()))
    topup = _top_up(client, 300)
    number = TopUp.objects.get(pk=topup["id"]).out_trade_no
    sandbox.faults(drop_notifies=1000)
    # when: the user pays
    sandbox.pay(number)
    # then: Celery beat asks the provider about the order and credits it
    _, worker = wallet_stack

    def explain() -> str:
        row = TopUp.objects.values("status", "created_at", "checked_at").get(pk=topup["id"])
        return f"{row}\n{sandbox.order(number)}\n{worker.log()[-3000:]}"

    _wait_for_balance(client, 300, timeout=60, explain=explain)
    stored = TopUp.objects.get(pk=topup["id"])
    assert stored.status == TopUpStatus.PAID
    assert stored.ledger_transaction is not None
    assert stored.ledger_transaction.metadata["via"] == "query"
    assert all(a["outcome"] == "dropped" for a in sandbox.order(number)["attempts"])


def test_topup__forged_notification__is_refused_and_credits_nothing(
    wallet_server: ServerProcess, sandbox: Sandbox
) -> None:
    # given: an order nobody paid
    client = _client(wallet_server, login_session(make_user()))
    topup = TopUp.objects.get(pk=_top_up(client, 9900)["id"])
    # when: someone posts a "paid" notification signed with another key
    answer = _notify(wallet_server, topup, key="not-the-merchant-key-000000000000")
    # then
    assert answer == {"return_code": "FAIL", "return_msg": "invalid signature"}
    assert client.get("/api/wallet").json()["balance"] == 0
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.PENDING


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml", b"<xml><return_code>SUCCESS</return_code></xml>",
     b'<!DOCTYPE x [<!ENTITY a "b">]><xml><sign>&a;</sign></xml>'],
)  # fmt: skip
def test_pay_notify__unsigned_or_malformed__is_refused(
    wallet_server: ServerProcess, body: bytes
) -> None:
    response = httpx.post(f"{wallet_server.url}/api/wallet/pay/notify", content=body, timeout=10)
    assert response.status_code == 200
    assert b"<return_code>FAIL</return_code>" in response.content


def test_topup__genuine_notification_replayed_later__credits_nothing_more(
    wallet_server: ServerProcess, sandbox: Sandbox
) -> None:
    # given: a top-up paid and credited
    client = _client(wallet_server, login_session(make_user()))
    topup = TopUp.objects.get(pk=_top_up(client, 700)["id"])
    sandbox.pay(topup.out_trade_no)
    _wait_for_balance(client, 700)
    # when: a genuine, signed notification of it arrives again (a replay)
    answers = [_notify(wallet_server, topup) for _ in range(3)]
    # then: acknowledged (so the provider stops), and nothing more is credited
    assert {a["return_code"] for a in answers} == {"SUCCESS"}
    assert client.get("/api/wallet").json()["balance"] == 700


def test_topup__notification_with_another_amount__is_refused_and_flagged(
    wallet_server: ServerProcess, sandbox: Sandbox
) -> None:
    client = _client(wallet_server, login_session(make_user()))
    topup = TopUp.objects.get(pk=_top_up(client, 1000)["id"])
    answer = _notify(wallet_server, topup, total_fee="100000", cash_fee="100000")
    assert answer == {"return_code": "FAIL", "return_msg": "amount mismatch"}
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.ANOMALY
    assert "100000 fen" in topup.failure_reason
    # and a later, right notification does not credit an order operators must look at
    assert _notify(wallet_server, topup)["return_code"] == "FAIL"
    assert client.get("/api/wallet").json()["balance"] == 0


def test_topup__notification_of_an_unknown_order__is_refused(
    wallet_server: ServerProcess, sandbox: Sandbox
) -> None:
    unknown = TopUp(out_trade_no="Tnosuchorder", amount=100)
    assert _notify(wallet_server, unknown) == {"return_code": "FAIL", "return_msg": "unknown order"}


def test_topup__merchant_key__never_appears_in_the_servers_logs(
    wallet_stack: tuple[ServerProcess, ServerProcess],
    wallet_server: ServerProcess,
    sandbox: Sandbox,
) -> None:
    client = _client(wallet_server, login_session(make_user()))
    sandbox.pay(TopUp.objects.get(pk=_top_up(client, 100)["id"]).out_trade_no)
    _wait_for_balance(client, 100)
    for process in (*wallet_stack, sandbox.server):
        assert settings.PAY_MCH_KEY not in process.log()
