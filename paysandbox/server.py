"""The sandbox's HTTP server (the standard library's threading server): the XML API,
the pay pages, and the JSON control API tests use to inject faults.

Control API (JSON; for loopback use, no authentication):
    GET  /sandbox/state                 merchant, orders (with notify attempts), transfers, faults
    POST /sandbox/faults                add faults: {"drop_notifies": n, "duplicate_notifies": n,
                                        "fail_transfers": [err_code, ...],
                                        "unknown_transfers": ["SUCCESS" | "FAILED", ...]}
    POST /sandbox/orders/<number>/pay   the user pays, as the pay page's button does
    GET  /sandbox/orders/<number>       one order
    POST /sandbox/reset                 forget everything
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from paysandbox import api, pages

logger = logging.getLogger("paysandbox")
MAX_BODY = 64 * 1024


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: api.Context) -> None:
        super().__init__(address, Handler)
        self.context = context


class Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    server_version = "paysandbox/1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    @property
    def context(self) -> api.Context:
        return self.server.context

    # --- Plumbing ------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _html(self, body: bytes) -> None:
        self._send(200, body, "text/html; charset=utf-8")

    # --- Routes --------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        store = self.context.store
        if url.path == "/":
            self._html(pages.overview(store))
        elif url.path == "/pay/page":
            order = store.order_by_prepay(query.get("prepay_id", ""))
            self._html(pages.pay_page(store, order, redirect_url=query.get("redirect_url", "")))
        elif url.path == "/sandbox/state":
            self._json(200, store.snapshot())
        elif url.path.startswith("/sandbox/orders/"):
            order = store.orders.get(url.path.removeprefix("/sandbox/orders/"))
            self._json(200, order.view()) if order else self._json(404, {"error": "no order"})
        else:
            self._json(404, {"error": f"nothing at {url.path}"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._body()
        except ValueError:
            self._json(413, {"error": "body too large"})
            return
        if url.path in api.ROUTES:
            self._send(200, api.answer(self.context, url.path, body), "text/xml; charset=utf-8")
        elif url.path == "/pay/page":
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            self._pay_from_page(form.get("prepay_id", ""), form.get("redirect_url", ""))
        elif url.path.startswith("/sandbox/"):
            self._control(url.path.removeprefix("/sandbox/"), body)
        else:
            self._json(404, {"error": f"nothing at {url.path}"})

    def _pay_from_page(self, prepay_id: str, redirect_url: str) -> None:
        store = self.context.store
        order = store.order_by_prepay(prepay_id)
        if order is not None and store.pay(order):
            self.context.notifier.schedule(order)
        self._html(pages.pay_page(store, order, redirect_url=redirect_url))

    def _control(self, action: str, body: bytes) -> None:
        store = self.context.store
        if action == "reset":
            store.reset()
            self._json(200, store.snapshot())
        elif action == "faults":
            try:
                faults = store.add_faults(json.loads(body or b"{}"))
            except (ValueError, TypeError, AttributeError) as error:
                self._json(400, {"error": str(error)})
                return
            self._json(200, faults)
        elif action.startswith("orders/") and action.endswith("/pay"):
            order = store.orders.get(action.removeprefix("orders/").removesuffix("/pay"))
            if order is None:
                self._json(404, {"error": "no order"})
                return
            if store.pay(order):
                self.context.notifier.schedule(order)
            self._json(200, order.view())
        else:
            self._json(404, {"error": f"no control action {action}"})
