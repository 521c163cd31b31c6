"""The sandbox's HTML: the pay page a user sees (with its Pay button) and an
overview of orders and transfers for whoever runs it."""

from __future__ import annotations

import time

from paysandbox.store import Order, Store
from paysandbox.wire import html

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;background:#ededed;margin:0;color:#191919}
main{max-width:420px;margin:40px auto;background:#fff;border-radius:8px;padding:24px}
h1{font-size:18px;margin:0 0 4px}.muted{color:#888;font-size:14px}
.amount{font-size:40px;font-weight:600;margin:16px 0}
button{width:100%;padding:12px;font-size:17px;border:0;border-radius:6px;background:#07c160;
color:#fff;cursor:pointer}button:disabled{background:#ccc}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{padding:4px;border-bottom:1px solid #eee;text-align:left}.wide{max-width:960px}
"""


def _page(title: str, body: str, *, wide: bool = False) -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body><main{' class=wide' if wide else ''}>"
        f"{body}</main></body></html>"
    ).encode()


def yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def pay_page(store: Store, order: Order | None, *, redirect_url: str = "") -> bytes:
    if order is None:
        return _page("Unknown order", "<h1>Unknown order</h1><p class=muted>No such prepay_id.</p>")
    head = (
        f"<h1>{html(store.merchant.name)}</h1>"
        f"<div class=muted>Merchant {html(store.merchant.mch_id)} · order "
        f"{html(order.out_trade_no)}</div>"
        f"<div class=amount data-testid=pay-amount>{yuan(order.total_fee)}</div>"
        f"<p>{html(order.body)}</p>"
    )
    if order.state == "SUCCESS":
        return paid_page(store, order, redirect_url=redirect_url)
    if order.state == "CLOSED" or time.time() > order.expires_at:
        return _page("Order closed", head + "<p data-testid=pay-closed>This order is closed.</p>")
    form = (
        '<form method="post" action="/pay/page">'
        f'<input type="hidden" name="prepay_id" value="{html(order.prepay_id)}">'
        f'<input type="hidden" name="redirect_url" value="{html(redirect_url)}">'
        f'<button type="submit" id="pay" data-testid="pay-button">Pay {yuan(order.total_fee)}'
        "</button></form>"
    )
    return _page("Pay", head + form)


def paid_page(store: Store, order: Order, *, redirect_url: str = "") -> bytes:
    back = ""
    if redirect_url.startswith(("http://", "https://")):
        back = f'<p><a href="{html(redirect_url)}">Back to {html(store.merchant.name)}</a></p>'
    body = (
        f"<h1>{html(store.merchant.name)}</h1>"
        f"<div class=amount>{yuan(order.total_fee)}</div>"
        f"<p data-testid=pay-done>Payment complete. You can close this page.</p>{back}"
    )
    return _page("Paid", body)


def overview(store: Store) -> bytes:
    with store.lock:
        orders = sorted(store.orders.values(), key=lambda o: -o.created_at)[:100]
        transfers = sorted(store.transfers.values(), key=lambda t: -t.created_at)[:100]
        order_rows = "".join(
            f"<tr><td>{html(o.out_trade_no)}</td><td>{yuan(o.total_fee)}</td>"
            f"<td>{html(o.state)}</td><td>{'yes' if o.notified else len(o.attempts)}</td>"
            f'<td><a href="/pay/page?prepay_id={html(o.prepay_id)}">pay page</a></td></tr>'
            for o in orders
        )
        transfer_rows = "".join(
            f"<tr><td>{html(t.partner_trade_no)}</td><td>{yuan(t.amount)}</td>"
            f"<td>{html(t.state)}</td><td>{html(t.reason)}</td></tr>"
            for t in transfers
        )
    body = (
        f"<h1>Payment sandbox · merchant {html(store.merchant.mch_id)}</h1>"
        "<p class=muted>A local stand-in for the payment provider (WeChat Pay v2). "
        "State lives in memory.</p><h2>Orders</h2><table><tr><th>out_trade_no</th><th>amount</th>"
        f"<th>state</th><th>notified (attempts)</th><th></th></tr>{order_rows}</table>"
        "<h2>Transfers</h2><table><tr><th>partner_trade_no</th><th>amount</th><th>state</th>"
        f"<th>note</th></tr>{transfer_rows}</table>"
    )
    return _page("Payment sandbox", body, wide=True)
