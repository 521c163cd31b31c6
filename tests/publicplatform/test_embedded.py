"""The embedded mode (`make run`: SQLite, in-memory channel layer, Celery eager): a
developer server that has not answered yet holds nobody's request, and its
replies still reach the user through SYNC once it answers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.devservers import DevServer, serve, wechatpy_app
from devtools.processes import start_asgi_server
from messaging.client import ChatClient
from tests.support.chat import run, ws_url
from tests.support.embedded import embedded_env, manage

pytestmark = pytest.mark.live
TOKEN = "embeddedtoken1"
# Longer than the test waits for any request: if a push ran inside the user's
# request, the request would hang until the gate opens, which only happens after.
PUSH_TIMEOUT = "120"


@contextmanager
def gated_server() -> Iterator[tuple[DevServer, threading.Event]]:
    """wechatpy's echo server, holding every push until `gate` is set."""
    gate = threading.Event()
    inner = wechatpy_app(TOKEN)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST":
            gate.wait(float(PUSH_TIMEOUT))
        return inner(environ, start_response)

    with serve(app) as server:
        try:
            yield server, gate
        finally:
            gate.set()  # let held requests end before the server stops


def replied(texts: list[str]) -> bool:
    return "echo: hello" in texts and any(text.startswith("welcome o") for text in texts)


CONFIGURE = """
from publicplatform.models import OfficialAccount
from publicplatform.services.accounts import account_server_configure
account = OfficialAccount.objects.get(name="微成都")
account_server_configure(
    account=account, server_url="{url}", token="{token}", encoding_aes_key="", mode="plain"
)
print(account.pk)
"""


def test_embedded__developer_server_not_answering__follow_and_send_return_and_replies_follow(
    tmp_path: Path,
) -> None:
    # given: the embedded defaults (no REDIS_URL), demo data, and 微成都 pointed at a
    # developer server that holds every push until the test lets it answer
    env = embedded_env(
        tmp_path,
        PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS=PUSH_TIMEOUT,
        # The developer's test server on this machine, allowed explicitly.
        PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS="127.0.0.1/32",
    )
    manage(env, "migrate", "--noinput")
    manage(env, "createdemo")
    with gated_server() as (developer, gate):
        configure = CONFIGURE.format(url=developer.url, token=TOKEN)
        account_id = int(manage(env, "shell", "-v", "0", "-c", configure).split()[-1])
        server = start_asgi_server(log_dir=tmp_path, env=env, name="embedded-platform")
        try:
            with httpx.Client(base_url=server.url, timeout=20) as http:
                device = {"platform": "web", "client_version": "1.0.0", "name": "t"}
                body = {"identifier": "alice@example.com", "password": "alice-demo-2026",
                        "device": device}  # fmt: skip
                ticket = http.post("/api/accounts/login", json=body).json()["ticket"]
                # when: Alice follows (a subscribe push) while the server holds it
                followed = http.post(
                    f"/api/official/accounts/{account_id}/follow",
                    headers={"Authorization": f"Ticket {ticket}"},
                )
            # then: her request came back before the server answered anything
            assert followed.status_code == 200, followed.text
            assert not gate.is_set()
            developer.wait_for_posts(1)

            async def chat() -> tuple[dict[str, Any], bool, list[str]]:
                async with ChatClient([ws_url(server)], ticket) as client:
                    # when: she writes; the push of her message is held as well
                    chat_id = followed.json()["conversation_id"]
                    ack = await client.send(chat_id, {"kind": "text", "text": "hello"}, timeout=20)
                    answered_before_ack = gate.is_set()
                    gate.set()  # the server answers both pushes now
                    texts: list[str] = []
                    while not replied(texts):
                        entry = await client.wait_for(lambda e: e["kind"] == "message", 30)
                        texts.append(str(entry["message"]["body"].get("text", "")))
                    return ack, answered_before_ack, texts

            ack, answered_before_ack, texts = run(chat(), timeout=90)
        finally:
            server.stop()
    # then: the send was acknowledged while its push was held, and both replies
    # (the welcome and the echo) reached her through SYNC afterwards
    assert ack["id"] > 0
    assert not answered_before_ack
    assert replied(texts)
    assert len(developer.posts()) == 2


READ_INTERNAL_PAGE = """
from publicplatform.services.accounts import account_create, account_server_configure
from wechat_core.errors import ServiceError
account = account_create(name="Curious", owner_id=None).account
try:
    account_server_configure(
        account=account, server_url="{url}", token="{token}", encoding_aes_key="", mode="plain"
    )
except ServiceError as error:
    print(error.code, error.message, error.details)
"""


def test_embedded__server_url_on_loopback__refused_by_default_and_nothing_is_read(
    tmp_path: Path,
) -> None:
    # given: the embedded defaults, and an internal page on loopback
    secret = "internal-admin-password=swordfish"

    def internal(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [secret.encode()]

    env = embedded_env(tmp_path)
    manage(env, "migrate", "--noinput")
    with serve(internal) as page:
        # when: a developer saves it as their server URL (issue 11 item 3)
        said = manage(
            env, "shell", "-v", "0", "-c", READ_INTERNAL_PAGE.format(url=page.url, token=TOKEN)
        )
    # then: refused before any request, and nothing of the page came back
    assert said.split()[0] == "server_url_refused", said
    assert page.received == []
    assert secret not in said
