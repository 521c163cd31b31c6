"""Our client of the payment provider (WeChat Pay v2 style; docs/wallet.md).

Each call signs its request and requires a signed answer from the same merchant
(an unsigned or wrongly signed answer is no answer: `ProviderUnreachable`). An
answer that says no is `ProviderRefused` with the provider's code. Calls go
through `wechat_core.http.outbound_client` (counted and timed as
`wallet.provider`). Nothing here touches the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

import httpx
from django.conf import settings

from wallet import paywire
from wallet.exceptions import PaymentsUnavailable, ProviderRefused
from wechat_core.breakers import Ejected, instance_of, shielded
from wechat_core.http import outbound_client

# The provider's clock: its time fields are Beijing time, yyyyMMddHHmmss.
PROVIDER_TIME_ZONE = ZoneInfo("Asia/Shanghai")
# Transfer refusals that are final: the money did not go, so it goes back to the
# wallet. Any other code (SYSTEMERROR above all) leaves the outcome unknown until
# a query says; the same partner_trade_no may be sent again safely.
FINAL_TRANSFER_FAILURES = frozenset(
    {
        "NOTENOUGH",
        "AMOUNT_LIMIT",
        "OPENID_ERROR",
        "NAME_MISMATCH",
        "V2_ACCOUNT_SIMPLE_BAN",
        "MONEY_LIMIT",
        "SENDNUM_LIMIT",
        "RECV_ACCOUNT_NOT_ALLOWED",
        "PAY_CHANNEL_NOT_ALLOWED",
        "NO_AUTH",
        "PARAM_ERROR",
    }
)


class ProviderUnreachable(Exception):
    """No trustworthy answer: the provider did not answer, answered with an HTTP
    error, or with a body we cannot read or whose signature is wrong."""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    url: str
    appid: str
    mch_id: str
    key: str = field(repr=False)
    notify_url: str
    timeout: float


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    prepay_id: str
    pay_url: str


@dataclass(frozen=True, slots=True)
class OrderState:
    # SUCCESS, NOTPAY, USERPAYING, CLOSED, REVOKED, PAYERROR, or NOT_FOUND (never ordered).
    trade_state: str
    total_fee: int | None = None
    transaction_id: str = ""


@dataclass(frozen=True, slots=True)
class TransferState:
    state: Literal["success", "failed", "processing", "unknown", "not_found"]
    payment_no: str = ""
    code: str = ""
    message: str = ""


def provider_config() -> ProviderConfig:
    if not settings.PAY_MCH_KEY:
        raise PaymentsUnavailable("Payments are not configured on this server (PAY_MCH_KEY).")
    return ProviderConfig(
        url=settings.PAY_PROVIDER_URL,
        appid=settings.PAY_APPID,
        mch_id=settings.PAY_MCH_ID,
        key=settings.PAY_MCH_KEY,
        notify_url=settings.PAY_NOTIFY_URL,
        timeout=settings.PAY_TIMEOUT_SECONDS,
    )


def provider_time(moment: dt.datetime) -> str:
    return moment.astimezone(PROVIDER_TIME_ZONE).strftime("%Y%m%d%H%M%S")


def _call(config: ProviderConfig, path: str, fields: dict[str, str]) -> dict[str, str]:
    body = paywire.signed_xml(fields, config.key)

    def post() -> httpx.Response:
        with outbound_client(service="wallet.provider", timeout=config.timeout) as client:
            return client.post(
                f"{config.url}{path}",
                content=body,
                headers={"Content-Type": "text/xml; charset=utf-8"},
            )

    # The provider's instance is shielded by this process's breaker (wechat_core.breakers):
    # after consecutive failures, calls fail at once until a probe succeeds.
    try:
        response = shielded(
            "wallet.provider", instance_of(config.url), post, failed=lambda r: r.status_code >= 500
        )
    except httpx.HTTPError as error:
        raise ProviderUnreachable(f"{path}: {type(error).__name__}") from None
    except Ejected as error:
        raise ProviderUnreachable(f"{path}: {error}") from None
    if response.status_code != 200:
        raise ProviderUnreachable(f"{path}: HTTP {response.status_code}")
    try:
        answer = paywire.parse(response.content)
    except paywire.WireError as error:
        raise ProviderUnreachable(f"{path}: {error}") from None
    if answer.get("return_code") != "SUCCESS":
        raise ProviderRefused(
            f"The payment provider refused the call: {answer.get('return_msg', '')[:100]}",
            details={"provider_code": "FAIL", "provider_message": answer.get("return_msg", "")},
        )
    if not paywire.signature_valid(answer, config.key):
        raise ProviderUnreachable(f"{path}: the answer's signature is wrong")
    if answer.get("mch_id", answer.get("mchid")) != config.mch_id:
        raise ProviderUnreachable(f"{path}: the answer is for another merchant")
    return answer


def _refused(answer: dict[str, str]) -> ProviderRefused:
    return ProviderRefused(
        f"The payment provider said {answer.get('err_code', 'FAIL')}: "
        f"{answer.get('err_code_des', '')[:100]}",
        details={
            "provider_code": answer.get("err_code", ""),
            "provider_message": answer.get("err_code_des", ""),
        },
    )


def unified_order(
    config: ProviderConfig,
    *,
    out_trade_no: str,
    total_fee: int,
    description: str,
    client_ip: str,
    expires_at: dt.datetime,
) -> OrderPlaced:
    """Place a payment order (统一下单, trade_type MWEB): the user pays on `pay_url`.
    Placing the same out_trade_no again with the same fields returns the same order."""
    answer = _call(
        config,
        "/pay/unifiedorder",
        {
            "appid": config.appid,
            "mch_id": config.mch_id,
            "body": description,
            "out_trade_no": out_trade_no,
            "total_fee": str(total_fee),
            "fee_type": "CNY",
            "spbill_create_ip": client_ip,
            "notify_url": config.notify_url,
            "trade_type": "MWEB",
            "time_expire": provider_time(expires_at),
        },
    )
    if answer.get("result_code") != "SUCCESS":
        raise _refused(answer)
    if not answer.get("prepay_id") or not answer.get("mweb_url", "").startswith("http"):
        raise ProviderUnreachable("/pay/unifiedorder: no prepay_id or mweb_url in the answer")
    return OrderPlaced(prepay_id=answer["prepay_id"], pay_url=answer["mweb_url"])


def order_query(config: ProviderConfig, *, out_trade_no: str) -> OrderState:
    """An order's state (查询订单)."""
    answer = _call(
        config,
        "/pay/orderquery",
        {"appid": config.appid, "mch_id": config.mch_id, "out_trade_no": out_trade_no},
    )
    if answer.get("result_code") != "SUCCESS":
        if answer.get("err_code") == "ORDERNOTEXIST":
            return OrderState(trade_state="NOT_FOUND")
        raise _refused(answer)
    if answer.get("out_trade_no") != out_trade_no:
        raise ProviderUnreachable("/pay/orderquery: the answer is about another order")
    fee = answer.get("total_fee", "")
    return OrderState(
        trade_state=answer.get("trade_state", ""),
        total_fee=int(fee) if fee.isdigit() else None,
        transaction_id=answer.get("transaction_id", ""),
    )


def close_order(config: ProviderConfig, *, out_trade_no: str) -> bool:
    """Close an unpaid order (关闭订单) so it can no longer be paid. False when it
    was paid meanwhile (ORDERPAID): query it and credit it instead."""
    answer = _call(
        config,
        "/pay/closeorder",
        {"appid": config.appid, "mch_id": config.mch_id, "out_trade_no": out_trade_no},
    )
    if answer.get("result_code") == "SUCCESS":
        return True
    if answer.get("err_code") == "ORDERPAID":
        return False
    if answer.get("err_code") in {"ORDERCLOSED", "ORDERNOTEXIST"}:
        return True
    raise _refused(answer)


def transfer(
    config: ProviderConfig, *, partner_trade_no: str, openid: str, amount: int, description: str
) -> TransferState:
    """Pay a user from the merchant's funds (企业付款). Never raises for an unknown
    outcome: network trouble and SYSTEMERROR answer `unknown` (ask again later)."""
    try:
        answer = _call(
            config,
            "/mmpaymkttransfers/promotion/transfers",
            {
                "mch_appid": config.appid,
                "mchid": config.mch_id,
                "partner_trade_no": partner_trade_no,
                "openid": openid,
                "check_name": "NO_CHECK",
                "amount": str(amount),
                "desc": description,
                "spbill_create_ip": "127.0.0.1",
            },
        )
    except (ProviderUnreachable, ProviderRefused) as error:
        return TransferState(state="unknown", message=str(error)[:200])
    if answer.get("result_code") == "SUCCESS":
        return TransferState(state="success", payment_no=answer.get("payment_no", ""))
    code = answer.get("err_code", "")
    state: Literal["failed", "unknown"] = "failed" if code in FINAL_TRANSFER_FAILURES else "unknown"
    return TransferState(state=state, code=code, message=answer.get("err_code_des", "")[:200])


def transfer_query(config: ProviderConfig, *, partner_trade_no: str) -> TransferState:
    """A transfer's outcome (查询企业付款): SUCCESS, FAILED or PROCESSING."""
    answer = _call(
        config,
        "/mmpaymkttransfers/gettransferinfo",
        {"appid": config.appid, "mch_id": config.mch_id, "partner_trade_no": partner_trade_no},
    )
    if answer.get("result_code") != "SUCCESS":
        if answer.get("err_code") == "NOT_FOUND":
            return TransferState(state="not_found")
        raise _refused(answer)
    status = answer.get("status", "")
    if status == "SUCCESS":
        return TransferState(state="success", payment_no=answer.get("detail_id", ""))
    if status == "FAILED":
        return TransferState(state="failed", code="FAILED", message=answer.get("reason", "")[:200])
    return TransferState(state="processing")
