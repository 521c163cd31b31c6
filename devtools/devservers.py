"""Real developer servers for the official-account tests, on loopback.

- `werobot_server`: a WeRoBot robot (the SDK's own Bottle app), plain or safe mode.
- `wechatpy_server`: a WSGI app written the way wechatpy's `examples/echo` is, from
  its helpers (check_signature, parse_message, create_reply, WeChatCrypto).
- `raw_server`: a server that misbehaves on purpose (hangs, garbage, huge bodies).

Each runs in a thread of the test process under wsgiref (threaded), records
every request it gets, and is stopped by the test. The Celery worker and daphne
processes reach them over 127.0.0.1, as they would a developer's machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import werobot
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Received:
    method: str
    query: dict[str, str]
    body: bytes
    content_type: str = ""


@dataclass
class DevServer:
    url: str
    received: list[Received] = field(default_factory=list)

    def posts(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    def wait_for_posts(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.posts()) >= count:
                return self.posts()
            time.sleep(0.05)
        raise AssertionError(f"{self.url} got {len(self.posts())} posts, expected {count}")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _recording(app: WsgiApp, server: DevServer) -> WsgiApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        server.received.append(
            Received(environ["REQUEST_METHOD"], query, body, environ.get("CONTENT_TYPE", ""))
        )
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return wrapped


@contextmanager
def serve(app: WsgiApp) -> Iterator[DevServer]:
    httpd = make_server("127.0.0.1", 0, app, server_class=_Threaded, handler_class=_Quiet)
    server = DevServer(url=f"http://127.0.0.1:{httpd.server_port}/wechat")
    httpd.set_app(_recording(app, server))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()


# --- WeRoBot -------------------------------------------------------------------------------


def werobot_robot(
    token: str, *, app_id: str | None = None, aes_key: str | None = None, delay: float = 0
) -> werobot.WeRoBot:
    # WeRoBot ignores a falsy `session_storage` and opens werobot_session.sqlite3 in
    # the working directory (a disk write per message); SESSION_STORAGE=False is
    # the spelling that turns sessions off.
    robot = werobot.WeRoBot(
        token=token, app_id=app_id, encoding_aes_key=aes_key, SESSION_STORAGE=False
    )

    @robot.text  # type: ignore[untyped-decorator]
    def echo(message: Any) -> Any:
        if delay:
            time.sleep(delay)
        if message.content == "news":
            return [["Title", "Description", "http://127.0.0.1/img.png", "http://127.0.0.1/a"]]
        if message.content == "quiet":
            return werobot.replies.SuccessReply()
        return f"echo: {message.content}"

    @robot.subscribe  # type: ignore[untyped-decorator]
    def welcome(message: Any) -> str:
        return f"welcome {message.source}"

    @robot.click  # type: ignore[untyped-decorator]
    def clicked(message: Any) -> str:
        return f"clicked {message.key}"

    return robot


@contextmanager
def werobot_server(token: str, **options: Any) -> Iterator[DevServer]:
    with serve(werobot_robot(token, **options).wsgi) as server:
        yield server


# --- wechatpy's helpers ------------------------------------------------------------------


def wechatpy_app(
    token: str, *, aes_key: str | None = None, appid: str | None = None, delay: float = 0
) -> WsgiApp:
    """The echo example of wechatpy as a WSGI app: 403 on a bad signature, the
    echostr on GET, a reply to text, subscribe and click."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            check_signature(
                token,
                query.get("signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
            )
        except InvalidSignatureException:
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"invalid signature"]
        if environ["REQUEST_METHOD"] == "GET":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [query.get("echostr", "").encode()]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        encrypted = query.get("encrypt_type", "raw") != "raw"
        crypto = WeChatCrypto(token, aes_key, appid) if encrypted else None
        if crypto is not None:
            body = crypto.decrypt_message(
                body, query["msg_signature"], query["timestamp"], query["nonce"]
            ).encode()
        message = parse_message(body)
        if delay:
            time.sleep(delay)
        if message.type == "text":
            reply = create_reply(f"echo: {message.content}", message)
        elif message.type == "event" and message.event == "subscribe":
            reply = create_reply(f"welcome {message.source}", message)
        elif message.type == "event" and message.event == "click":
            reply = create_reply(f"clicked {message.key}", message)
        else:
            reply = create_reply(None, message)
        rendered = reply.render() if hasattr(reply, "render") else ""
        if crypto is not None and rendered:
            rendered = crypto.encrypt_message(rendered, query["nonce"], query["timestamp"])
        start_response("200 OK", [("Content-Type", "application/xml")])
        return [rendered.encode() if isinstance(rendered, str) else rendered]

    return app


@contextmanager
def wechatpy_server(token: str, **options: Any) -> Iterator[DevServer]:
    with serve(wechatpy_app(token, **options)) as server:
        yield server


# --- Servers that misbehave ------------------------------------------------------------------


def raw_app(*, token: str, post: Callable[[], tuple[str, bytes]], sleep: float = 0) -> WsgiApp:
    """Passes the handshake like a good server; answers pushes with `post()`."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if environ["REQUEST_METHOD"] == "GET":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [query.get("echostr", "").encode()]
        if sleep:
            time.sleep(sleep)
        status, body = post()
        start_response(status, [("Content-Type", "text/html")])
        return [body]

    return app


@contextmanager
def raw_server(
    *, token: str, post: Callable[[], tuple[str, bytes]], sleep: float = 0
) -> Iterator[DevServer]:
    with serve(raw_app(token=token, post=post, sleep=sleep)) as server:
        yield server
