"""Payment notifications to the merchant's notify_url, as the provider sends them:
at once after the payment, then again after each delay of the backoff schedule
until the merchant answers return_code SUCCESS (WeChat: 15 s, 15 s, 30 s, 3 min,
10 min, 20 min, 30 min, 30 min, 30 min, 60 min, 3 h, 3 h, 3 h, 6 h, 6 h)."""

from __future__ import annotations

import heapq
import logging
import threading
import time
import urllib.error
import urllib.request

from paysandbox import wire
from paysandbox.store import NotifyAttempt, Order, Store

logger = logging.getLogger("paysandbox")

WECHAT_BACKOFF: tuple[float, ...] = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600)
WECHAT_BACKOFF += (10800, 10800, 10800, 21600, 21600)
TIMEOUT_SECONDS = 5.0


def notify_body(store: Store, order: Order) -> bytes:
    fields = {
        "appid": store.merchant.appid,
        "mch_id": store.merchant.mch_id,
        "return_code": "SUCCESS",
        "result_code": "SUCCESS",
        "openid": order.openid,
        "is_subscribe": "N",
        "trade_type": order.trade_type,
        "bank_type": "OTHERS",
        "total_fee": str(order.total_fee),
        "cash_fee": str(order.total_fee),
        "fee_type": "CNY",
        "transaction_id": order.transaction_id,
        "out_trade_no": order.out_trade_no,
        "attach": order.attach,
        "time_end": order.time_end,
    }
    return wire.signed(fields, store.merchant.key, order.sign_type)


class Notifier:
    """One thread that sends due notifications; `schedule` wakes it."""

    def __init__(self, store: Store, backoff: tuple[float, ...]) -> None:
        self.store = store
        self.backoff = backoff
        self._due: list[tuple[float, int, str, int]] = []  # (when, tiebreak, order, attempt)
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def schedule(self, order: Order, *, attempt: int = 1, delay: float = 0.0) -> None:
        with self._wake:
            heapq.heappush(
                self._due, (time.time() + delay, self.store.serial(), order.out_trade_no, attempt)
            )
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.time():
                    self._wake.wait(timeout=(self._due[0][0] - time.time()) if self._due else None)
                _, _, number, attempt = heapq.heappop(self._due)
            order = self.store.orders.get(number)
            if order is not None and not order.notified:
                threading.Thread(target=self._attempt, args=(order, attempt), daemon=True).start()

    def _attempt(self, order: Order, attempt: int) -> None:
        copies = 2 if self.store.take_fault("duplicate_notifies") else 1
        if self.store.take_fault("drop_notifies"):
            outcomes = [("dropped", "lost on the way (fault injected)")]
        elif copies == 1:
            outcomes = [self._post(order)]
        else:  # the same notification twice, at the same moment
            results: list[tuple[str, str]] = []
            threads = [
                threading.Thread(target=lambda: results.append(self._post(order)))
                for _ in range(copies)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            outcomes = results
        with self.store.lock:
            for outcome, detail in outcomes:
                order.attempts.append(NotifyAttempt(attempt, time.time(), outcome, detail))
            if any(outcome == "acknowledged" for outcome, _ in outcomes):
                order.notified = True
                return
        if attempt <= len(self.backoff):
            self.schedule(order, attempt=attempt + 1, delay=self.backoff[attempt - 1])
        else:
            logger.warning("notify of %s: gave up after %d attempts", order.out_trade_no, attempt)

    def _post(self, order: Order) -> tuple[str, str]:
        request = urllib.request.Request(  # noqa: S310 - the merchant's own http(s) URL
            order.notify_url,
            data=notify_body(self.store, order),
            headers={"Content-Type": "text/xml; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                answer = response.read(64 * 1024)
        except urllib.error.HTTPError as error:
            return "error", f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            return "error", type(error).__name__
        try:
            fields = wire.parse(answer)
        except wire.BadMessage:
            return "refused", "unreadable answer"
        if fields.get("return_code") == "SUCCESS":
            return "acknowledged", ""
        return "refused", fields.get("return_msg", "")[:200]
