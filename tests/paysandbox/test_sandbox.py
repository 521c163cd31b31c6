"""The payment sandbox as a provider: wechatpy's WeChat Pay client (an implementation
of the real protocol that is not ours) talks to it, its notifications retry with
backoff until acknowledged, and its control API injects faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from django.conf import settings
from wechatpy.exceptions import WeChatPayException
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac, dict_to_xml

from tests.support.paysandbox import Sandbox
from wallet import paywire

NOTIFY_ANSWERS = {
    "ok": b"<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>",
    "no": b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg>busy</return_msg></xml>",
}


@pytest.fixture
def sandbox(paysandbox: Sandbox) -> Iterator[Sandbox]:
    paysandbox.reset()
    yield paysandbox
    paysandbox.reset()


@pytest.fixture
def pay(sandbox: Sandbox) -> WeChatPay:
    client = WeChatPay(
        appid=settings.PAY_APPID,
        api_key=settings.PAY_MCH_KEY,
        mch_id=settings.PAY_MCH_ID,
        timeout=10,
    )
    client.API_BASE_URL = f"{sandbox.url}/"
    return client


class Merchant:
    """A merchant's notify endpoint that refuses the first `refusals` notifications."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.received: list[tuple[float, dict[str, str]]] = []
        merchant = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                merchant.received.append((time.monotonic(), paywire.parse(body)))
                answer = NOTIFY_ANSWERS["no" if len(merchant.received) <= refusals else "ok"]
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/notify"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} notifications, not {count}"
            time.sleep(0.02)
        return [fields for _, fields in self.received]


def _order(pay: WeChatPay, number: str, url: str, **extra: Any) -> dict[str, Any]:
    return dict(
        pay.order.create(
            trade_type="MWEB",
            body="Wallet top-up",
            total_fee=1234,
            notify_url=url,
            client_ip="127.0.0.1",
            out_trade_no=number,
            **extra,
        )
    )


@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_sandbox__wechatpy_places_and_queries_an_order__in_either_sign_type(
    pay: WeChatPay, sign_type: str
) -> None:
    extra = {"sign_type": sign_type} if sign_type != "MD5" else {}
    placed = _order(pay, f"T-{sign_type}", "http://127.0.0.1:9/notify", **extra)
    assert placed["mweb_url"].endswith(f"/pay/page?prepay_id={placed['prepay_id']}")
    signer = calculate_signature_hmac if sign_type == "HMAC-SHA256" else calculate_signature
    unsigned = {k: v for k, v in placed.items() if k != "sign"}
    assert placed["sign"] == signer(unsigned, settings.PAY_MCH_KEY)
    # placing it again is idempotent; with another amount it is refused
    assert (
        _order(pay, f"T-{sign_type}", "http://127.0.0.1:9/notify", **extra)["prepay_id"]
        == (placed["prepay_id"])
    )
    with pytest.raises(WeChatPayException) as refused:
        pay.order.create(
            trade_type="MWEB",
            body="x",
            total_fee=1,
            notify_url="http://a/n",
            client_ip="127.0.0.1",
            out_trade_no=f"T-{sign_type}",
        )
    assert refused.value.errcode == "OUT_TRADE_NO_USED"
    assert pay.order.query(out_trade_no=f"T-{sign_type}")["trade_state"] == "NOTPAY"


def test_sandbox__wrong_key__is_refused_with_return_code_fail(sandbox: Sandbox) -> None:
    stranger = WeChatPay(appid=settings.PAY_APPID, api_key="x" * 32, mch_id=settings.PAY_MCH_ID)
    stranger.API_BASE_URL = f"{sandbox.url}/"
    with pytest.raises(WeChatPayException) as refused:
        stranger.order.query(out_trade_no="T-any")
    assert refused.value.return_code == "FAIL"


def test_sandbox__pay_page__shows_the_amount_and_pays_with_its_button(
    pay: WeChatPay, sandbox: Sandbox
) -> None:
    placed = _order(pay, "T-page", "http://127.0.0.1:9/notify")
    page = httpx.get(placed["mweb_url"]).text
    assert "¥12.34" in page
    assert 'data-testid="pay-button"' in page
    done = httpx.post(f"{sandbox.url}/pay/page", data={"prepay_id": placed["prepay_id"]}).text
    assert "Payment complete" in done
    state = pay.order.query(out_trade_no="T-page")
    assert (state["trade_state"], state["total_fee"]) == ("SUCCESS", "1234")
    with pytest.raises(WeChatPayException) as refused:
        pay.order.close(out_trade_no="T-page")
    assert refused.value.errcode == "ORDERPAID"


def test_sandbox__notification__is_retried_with_backoff_until_acknowledged(
    pay: WeChatPay, sandbox: Sandbox
) -> None:
    # given: a merchant that answers FAIL twice
    merchant = Merchant(refusals=2)
    _order(pay, "T-retry", merchant.url)
    # when
    sandbox.pay("T-retry")
    received = merchant.wait_for(3)
    # then: three signed notifications, growing waits, then no more
    assert {fields["out_trade_no"] for fields in received} == {"T-retry"}
    assert all(paywire.signature_valid(f, settings.PAY_MCH_KEY) is False for f in received)
    unsigned = {k: v for k, v in received[0].items() if k != "sign"}
    assert received[0]["sign"] == calculate_signature(unsigned, settings.PAY_MCH_KEY)
    times = [at for at, _ in merchant.received]
    assert times[2] - times[1] > times[1] - times[0] > 0.2
    order = sandbox.wait_for_order("T-retry", lambda o: o["notified"])
    assert [a["outcome"] for a in order["attempts"]] == ["refused", "refused", "acknowledged"]
    merchant.httpd.shutdown()


def test_sandbox__hmac_order__is_notified_in_hmac(pay: WeChatPay, sandbox: Sandbox) -> None:
    merchant = Merchant(refusals=0)
    _order(pay, "T-hmac", merchant.url, sign_type="HMAC-SHA256")
    sandbox.pay("T-hmac")
    [fields] = merchant.wait_for(1)
    assert paywire.signature_valid(fields, settings.PAY_MCH_KEY)
    merchant.httpd.shutdown()


def test_sandbox__transfers__pay_once_per_number_and_fail_on_request(
    pay: WeChatPay, sandbox: Sandbox
) -> None:
    paid = pay.transfer.transfer(
        user_id="oUser",
        amount=100,
        desc="d",
        client_ip="127.0.0.1",
        out_trade_no="W-1",
        check_name="NO_CHECK",
    )
    again = pay.transfer.transfer(
        user_id="oUser",
        amount=100,
        desc="d",
        client_ip="127.0.0.1",
        out_trade_no="W-1",
        check_name="NO_CHECK",
    )
    assert again["payment_no"] == paid["payment_no"]
    assert pay.transfer.query(out_trade_no="W-1")["status"] == "SUCCESS"
    sandbox.faults(fail_transfers=["NOTENOUGH"])
    with pytest.raises(WeChatPayException) as refused:
        pay.transfer.transfer(
            user_id="oUser",
            amount=100,
            desc="d",
            client_ip="127.0.0.1",
            out_trade_no="W-2",
            check_name="NO_CHECK",
        )
    assert refused.value.errcode == "NOTENOUGH"
    assert pay.transfer.query(out_trade_no="W-2")["status"] == "FAILED"
    with pytest.raises(WeChatPayException) as small:
        pay.transfer.transfer(
            user_id="oUser",
            amount=29,
            desc="d",
            client_ip="127.0.0.1",
            out_trade_no="W-3",
            check_name="NO_CHECK",
        )
    assert small.value.errcode == "AMOUNT_LIMIT"


def test_sandbox__control_api__refuses_unknown_faults(sandbox: Sandbox) -> None:
    response = httpx.post(f"{sandbox.url}/sandbox/faults", json={"explode": 1})
    assert response.status_code == 400
    assert httpx.post(f"{sandbox.url}/sandbox/orders/nope/pay").status_code == 404


def test_sandbox__raw_xml_with_an_entity__is_refused(sandbox: Sandbox) -> None:
    body = b'<!DOCTYPE x [<!ENTITY a "b">]><xml><appid>&a;</appid></xml>'
    answer = httpx.post(f"{sandbox.url}/pay/orderquery", content=body)
    assert paywire.parse(answer.content)["return_code"] == "FAIL"
    signed = dict_to_xml({"appid": "x"}, "SIGN")
    assert (
        paywire.parse(httpx.post(f"{sandbox.url}/pay/orderquery", content=signed).content)[
            "return_code"
        ]
        == "FAIL"
    )
