"""The provider's XML API: place, query and close orders; pay users and query that.

Every request is signed by the merchant (MD5 or HMAC-SHA256); a bad signature or
another merchant's ids answer return_code FAIL. Business refusals answer
result_code FAIL with WeChat's err_code. Every answer is signed with the
request's sign type (WeChat leaves the transfer answers unsigned; signing them
too lets the merchant trust a refusal)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from paysandbox import wire
from paysandbox.notifier import Notifier
from paysandbox.store import TWO_HOURS, Order, Store, Transfer, parse_beijing_time

TRADE_NO = re.compile(r"^[A-Za-z0-9_\-|*]{1,32}$")
TRADE_TYPES = ("JSAPI", "NATIVE", "APP", "MWEB")
TRANSFER_MIN_FEN = 30  # 0.3 CNY, the provider's smallest payment to a user
STATE_DESCRIPTIONS = {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭"}


class Refusal(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Context:
    def __init__(self, store: Store, notifier: Notifier, public_url: str) -> None:
        self.store, self.notifier, self.public_url = store, notifier, public_url


def _required(fields: dict[str, str], *names: str) -> None:
    for name in names:
        if not fields.get(name):
            raise Refusal("PARAM_ERROR", f"missing {name}")


def _fee(text: str, name: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) <= 0:
        raise Refusal("PARAM_ERROR", f"{name} must be a positive number of fen")
    return int(text)


def unified_order(context: Context, fields: dict[str, str]) -> dict[str, str]:
    _required(fields, "body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url")
    _required(fields, "trade_type")
    number, notify_url = fields["out_trade_no"], fields["notify_url"]
    if not TRADE_NO.match(number):
        raise Refusal("PARAM_ERROR", "out_trade_no: 1-32 letters, digits, _-|*")
    if (
        not notify_url.startswith(("http://", "https://"))
        or fields["trade_type"] not in TRADE_TYPES
    ):
        raise Refusal(
            "PARAM_ERROR", "notify_url must be http(s); trade_type one of " + ", ".join(TRADE_TYPES)
        )
    fee = _fee(fields["total_fee"], "total_fee")
    fingerprint = (fields["body"], str(fee), notify_url, fields["trade_type"])
    store = context.store
    with store.lock:
        order = store.orders.get(number)
        if order is not None:
            if order.fingerprint != fingerprint:
                raise Refusal(
                    "OUT_TRADE_NO_USED", "商户订单号重复 (out_trade_no used with other fields)"
                )
            if order.state == "SUCCESS":
                raise Refusal("ORDERPAID", "该订单已支付 (already paid)")
            if order.state == "CLOSED":
                raise Refusal("ORDERCLOSED", "该订单已关闭 (closed)")
        else:
            now = time.time()
            order = Order(
                out_trade_no=number,
                prepay_id=store.new_prepay_id(),
                total_fee=fee,
                body=fields["body"],
                notify_url=notify_url,
                trade_type=fields["trade_type"],
                sign_type=fields.get("sign_type") or "MD5",
                attach=fields.get("attach", ""),
                created_at=now,
                fingerprint=fingerprint,
                expires_at=parse_beijing_time(fields.get("time_expire", "")) or now + TWO_HOURS,
            )
            store.orders[number] = order
            store.by_prepay[order.prepay_id] = number
    page = f"{context.public_url}/pay/page?prepay_id={order.prepay_id}"
    answer = {
        "result_code": "SUCCESS",
        "prepay_id": order.prepay_id,
        "trade_type": order.trade_type,
    }
    answer["code_url" if order.trade_type == "NATIVE" else "mweb_url"] = page
    return answer


def _find_order(context: Context, fields: dict[str, str]) -> Order:
    store = context.store
    with store.lock:
        order = store.orders.get(fields.get("out_trade_no", ""))
        if order is None and fields.get("transaction_id"):
            order = next(
                (o for o in store.orders.values() if o.transaction_id == fields["transaction_id"]),
                None,
            )
    if order is None:
        raise Refusal("ORDERNOTEXIST", "此交易订单号不存在 (no such order)")
    return order


def order_query(context: Context, fields: dict[str, str]) -> dict[str, str]:
    order = _find_order(context, fields)
    answer = {
        "result_code": "SUCCESS",
        "out_trade_no": order.out_trade_no,
        "trade_state": order.state,
        "trade_state_desc": STATE_DESCRIPTIONS[order.state],
        "attach": order.attach,
    }
    if order.state == "SUCCESS":
        answer |= {
            "transaction_id": order.transaction_id,
            "total_fee": str(order.total_fee),
            "cash_fee": str(order.total_fee),
            "fee_type": "CNY",
            "time_end": order.time_end,
            "openid": order.openid,
            "trade_type": order.trade_type,
            "bank_type": "OTHERS",
        }
    return answer


def close_order(context: Context, fields: dict[str, str]) -> dict[str, str]:
    order = _find_order(context, fields)
    with context.store.lock:
        if order.state == "SUCCESS":
            raise Refusal("ORDERPAID", "订单已支付, 不能发起关单 (already paid)")
        if order.state == "CLOSED":
            raise Refusal("ORDERCLOSED", "订单已关闭 (closed)")
        order.state = "CLOSED"
    return {"result_code": "SUCCESS"}


def _payment_time(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))


def transfer(context: Context, fields: dict[str, str]) -> dict[str, str]:
    _required(fields, "partner_trade_no", "openid", "check_name", "amount", "desc")
    number = fields["partner_trade_no"]
    if not TRADE_NO.match(number):
        raise Refusal("PARAM_ERROR", "partner_trade_no: 1-32 letters, digits, _-|*")
    amount = _fee(fields["amount"], "amount")
    if amount < TRANSFER_MIN_FEN:
        raise Refusal("AMOUNT_LIMIT", "付款金额不能小于最低限额 (below 0.3 CNY)")
    fingerprint = (fields["openid"], str(amount), fields["desc"])
    store = context.store
    with store.lock:
        item = store.transfers.get(number)
        if item is None:
            item = _new_transfer(
                store, number, fields["openid"], amount, fields["desc"], fingerprint
            )
        elif item.fingerprint != fingerprint:
            raise Refusal(
                "FATAL_ERROR", "已存在该单, 并且订单信息与之前传入的不一致 (other fields)"
            )
        if item.answered == "SUCCESS":
            return {
                "result_code": "SUCCESS",
                "partner_trade_no": number,
                "payment_no": item.payment_no,
                "payment_time": _payment_time(item.created_at),
            }
        raise Refusal(item.answered, item.reason or "系统繁忙, 请稍后再试 (outcome unknown)")


def _new_transfer(
    store: Store, number: str, openid: str, amount: int, desc: str, fingerprint: tuple[str, ...]
) -> Transfer:
    item = Transfer(number, openid, amount, desc, fingerprint, state="SUCCESS", answered="SUCCESS")
    failure = store.take_fault("fail_transfers")
    unknown = store.take_fault("unknown_transfers") if failure is None else None
    if failure is not None:
        item.state, item.answered, item.err_code = "FAILED", failure, failure
        item.reason = f"{failure} (fault injected)"
    elif unknown is not None:
        item.answered = "SYSTEMERROR"
        item.state = "FAILED" if unknown == "FAILED" else "SUCCESS"
        item.reason = "ended unknown to the merchant (fault injected)"
    if item.state == "SUCCESS":
        item.payment_no = store.new_payment_no()
    store.transfers[number] = item
    return item


def transfer_query(context: Context, fields: dict[str, str]) -> dict[str, str]:
    _required(fields, "partner_trade_no")
    with context.store.lock:
        item = context.store.transfers.get(fields["partner_trade_no"])
    if item is None:
        raise Refusal("NOT_FOUND", "指定单号数据不存在 (no such transfer)")
    return {
        "result_code": "SUCCESS",
        "partner_trade_no": item.partner_trade_no,
        "detail_id": item.payment_no,
        "status": item.state,
        "reason": item.reason,
        "openid": item.openid,
        "payment_amount": str(item.amount),
        "desc": item.desc,
        "transfer_time": _payment_time(item.created_at),
        "payment_time": _payment_time(item.created_at) if item.state == "SUCCESS" else "",
    }


Handler = Callable[[Context, dict[str, str]], dict[str, str]]
# path → (handler, the names of the merchant's ids in its messages)
ROUTES: dict[str, tuple[Handler, tuple[str, str]]] = {
    "/pay/unifiedorder": (unified_order, ("appid", "mch_id")),
    "/pay/orderquery": (order_query, ("appid", "mch_id")),
    "/pay/closeorder": (close_order, ("appid", "mch_id")),
    "/mmpaymkttransfers/promotion/transfers": (transfer, ("mch_appid", "mchid")),
    "/mmpaymkttransfers/gettransferinfo": (transfer_query, ("appid", "mch_id")),
}


def answer(context: Context, path: str, body: bytes) -> bytes:
    """The XML answer to one API call."""
    handler, (appid_name, mch_name) = ROUTES[path]
    merchant = context.store.merchant
    try:
        fields = wire.parse(body)
    except wire.BadMessage:
        return wire.render({"return_code": "FAIL", "return_msg": "XML格式错误 (not XML)"})
    if not wire.verified(fields, merchant.key):
        return wire.render({"return_code": "FAIL", "return_msg": "签名错误 (signature error)"})
    if fields.get(appid_name) != merchant.appid or fields.get(mch_name) != merchant.mch_id:
        return wire.render({"return_code": "FAIL", "return_msg": "appid和mch_id不匹配 (not ours)"})
    try:
        result = handler(context, fields)
    except Refusal as refusal:
        result = {"result_code": "FAIL", "err_code": refusal.code, "err_code_des": refusal.message}
    ids = {appid_name: merchant.appid, mch_name: merchant.mch_id}
    complete: dict[str, Any] = {"return_code": "SUCCESS", "return_msg": "OK", **ids, **result}
    return wire.signed(complete, merchant.key, fields.get("sign_type") or "MD5")
