"""The sandbox's state, in memory and behind one lock: the merchant, orders,
transfers, notification attempts and the faults tests asked for."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
TWO_HOURS = 2 * 3600.0


def beijing_time(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, BEIJING).strftime("%Y%m%d%H%M%S")


def parse_beijing_time(text: str) -> float | None:
    try:
        moment = dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None
    return moment.timestamp()


@dataclass(frozen=True)
class Merchant:
    appid: str
    mch_id: str
    key: str = field(repr=False)
    name: str = "Sandbox merchant"


@dataclass
class NotifyAttempt:
    number: int
    at: float
    outcome: str  # acknowledged, refused, error, dropped
    detail: str = ""


@dataclass
class Order:
    out_trade_no: str
    prepay_id: str
    total_fee: int
    body: str
    notify_url: str
    trade_type: str
    sign_type: str
    attach: str
    created_at: float
    expires_at: float
    fingerprint: tuple[str, ...]
    state: str = "NOTPAY"  # SUCCESS, CLOSED
    transaction_id: str = ""
    time_end: str = ""
    openid: str = ""
    notified: bool = False  # acknowledged with return_code SUCCESS
    attempts: list[NotifyAttempt] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body.pop("fingerprint")
        return body


@dataclass
class Transfer:
    partner_trade_no: str
    openid: str
    amount: int
    desc: str
    fingerprint: tuple[str, ...]
    state: str  # SUCCESS, FAILED, PROCESSING
    payment_no: str = ""
    err_code: str = ""
    reason: str = ""
    created_at: float = field(default_factory=time.time)
    # What the first answer said: SUCCESS, or an err_code (SYSTEMERROR: outcome unknown).
    answered: str = ""

    def view(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body.pop("fingerprint")
        return body


@dataclass
class Faults:
    drop_notifies: int = 0  # the next N notification attempts are lost on the way
    duplicate_notifies: int = 0  # the next N notifications are sent twice at once
    fail_transfers: list[str] = field(default_factory=list)  # err_codes, one per transfer
    # Answer SYSTEMERROR to the next transfers, which then end as these (SUCCESS, FAILED).
    unknown_transfers: list[str] = field(default_factory=list)


class Store:
    def __init__(self, merchant: Merchant) -> None:
        self.merchant = merchant
        self.lock = threading.RLock()
        self.orders: dict[str, Order] = {}
        self.by_prepay: dict[str, str] = {}
        self.transfers: dict[str, Transfer] = {}
        self.faults = Faults()
        self._serial = 0

    def serial(self) -> int:
        with self.lock:
            self._serial += 1
            return self._serial

    def new_prepay_id(self) -> str:
        return "wx" + time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(12)

    def new_transaction_id(self) -> str:
        return "4200" + time.strftime("%Y%m%d") + f"{self.serial():016d}"

    def new_payment_no(self) -> str:
        return "1000018301" + time.strftime("%Y%m%d") + f"{self.serial():014d}"

    def order_by_prepay(self, prepay_id: str) -> Order | None:
        with self.lock:
            number = self.by_prepay.get(prepay_id)
            return self.orders.get(number) if number else None

    def pay(self, order: Order) -> bool:
        """The user pays: True if this paid it now (it was payable)."""
        with self.lock:
            if order.state != "NOTPAY" or time.time() > order.expires_at:
                return False
            order.state = "SUCCESS"
            order.transaction_id = self.new_transaction_id()
            order.time_end = beijing_time(time.time())
            order.openid = "oSandbox" + secrets.token_hex(10)
            return True

    def take_fault(self, name: str) -> Any:
        """Consume one unit of a fault: the count's or the list's next item, or None."""
        with self.lock:
            value = getattr(self.faults, name)
            if isinstance(value, list):
                return value.pop(0) if value else None
            if value:
                setattr(self.faults, name, value - 1)
                return True
            return None

    def add_faults(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for name, value in changes.items():
                current = getattr(self.faults, name, None)
                if isinstance(current, list) and isinstance(value, list):
                    current.extend(str(item) for item in value)
                elif isinstance(current, int) and isinstance(value, int) and value >= 0:
                    setattr(self.faults, name, current + value)
                else:
                    raise ValueError(f"unknown fault or bad value: {name}")
            return dataclasses.asdict(self.faults)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "merchant": {"appid": self.merchant.appid, "mch_id": self.merchant.mch_id},
                "orders": [order.view() for order in self.orders.values()],
                "transfers": [item.view() for item in self.transfers.values()],
                "faults": dataclasses.asdict(self.faults),
            }

    def reset(self) -> None:
        with self.lock:
            self.orders.clear()
            self.by_prepay.clear()
            self.transfers.clear()
            self.faults = Faults()
