"""The ASGI servers as wechat_core.serve starts them: who the client is behind
X-Forwarded-For, and how big a websocket message may get before the socket cuts it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from accounts.models import Device
from devtools.processes import ServerProcess, start_asgi_server
from tests.factories import PASSWORD, device_json, make_user
from tests.support.chat import raw_connect
from wechat_core.api.request import scope_client_ip

SERVERS = ("daphne", "uvicorn")
IP_LIMIT = 3


def start(kind: str, env: dict[str, str], log_dir: Path, **overrides: str) -> ServerProcess:
    settings_env = {"LOGIN_IP_MAX_FAILURES": str(IP_LIMIT), "LOGIN_ACCOUNT_MAX_FAILURES": "50"}
    return start_asgi_server(
        log_dir=log_dir, env=env | settings_env | overrides, server=kind, name=f"serve-{kind}"
    )


@pytest.fixture(scope="module")
def direct_servers(live_env: dict[str, str], live_log_dir: Path) -> Iterator[list[ServerProcess]]:
    """daphne and uvicorn facing clients directly (NUM_PROXIES=0)."""
    servers = [start(kind, live_env, live_log_dir, NUM_PROXIES="0") for kind in SERVERS]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def proxied_servers(live_env: dict[str, str], live_log_dir: Path) -> Iterator[list[ServerProcess]]:
    """daphne and uvicorn behind one proxy (NUM_PROXIES=1)."""
    servers = [start(kind, live_env, live_log_dir, NUM_PROXIES="1") for kind in SERVERS]
    yield servers
    for server in servers:
        server.stop()


def failed_login(server: ServerProcess, forwarded_for: str) -> httpx.Response:
    body = {"identifier": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong-pw",
            "device": device_json()}  # fmt: skip
    return httpx.post(
        f"{server.url}/api/accounts/login", json=body, headers={"X-Forwarded-For": forwarded_for}
    )


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("index", range(len(SERVERS)), ids=SERVERS)
def test_client_ip__spoofed_forwarded_for_without_proxies__does_not_escape_the_ip_lock(
    direct_servers: list[ServerProcess], index: int
) -> None:
    # given: a client talking to the server directly, inventing a new address each time
    server = direct_servers[index]
    # when: it fails to log in more often than one address may
    answers = [failed_login(server, f"198.51.100.{n}") for n in range(1, IP_LIMIT + 2)]
    # then: its real address (the TCP peer) got locked all the same
    assert [a.status_code for a in answers[: IP_LIMIT - 1]] == [401] * (IP_LIMIT - 1)
    locked = answers[IP_LIMIT - 1 :]
    assert [a.status_code for a in locked] == [429, 429]
    assert {a.json()["details"]["scope"] for a in locked} == {"login-ip"}


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("index", range(len(SERVERS)), ids=SERVERS)
def test_client_ip__behind_one_proxy__is_the_hop_the_proxy_appended(
    proxied_servers: list[ServerProcess], index: int
) -> None:
    # given: a proxy that appends the address it saw to whatever the client sent
    server = proxied_servers[index]
    user = make_user(email=f"hop{index}@example.com")
    # when: a client rotates the part it controls while the proxy saw 203.0.113.7
    answers = [failed_login(server, f"10.9.9.{n}, 203.0.113.7") for n in range(1, IP_LIMIT + 1)]
    # then: 203.0.113.7 is locked, another address behind the same proxy is not
    assert answers[-1].status_code == 429
    assert answers[-1].json()["details"]["scope"] == "login-ip"
    assert failed_login(server, "203.0.113.7, 203.0.113.8").status_code == 401
    # and a login records the proxy's hop as the device's address
    body = {"identifier": user.email, "password": PASSWORD, "device": device_json()}
    headers = {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}
    response = httpx.post(f"{server.url}/api/accounts/login", json=body, headers=headers)
    assert response.status_code == 200, response.text
    device = Device.objects.get(pk=response.json()["device"]["id"])
    assert device.last_ip == "203.0.113.9"


def test_scope_client_ip__websocket_handshake__follows_the_same_rule(settings: object) -> None:
    # given: a handshake from 127.0.0.1 claiming to come from elsewhere
    scope = {
        "type": "websocket",
        "client": ("127.0.0.1", 50000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.4")],
    }
    # then: no proxy, the peer; one proxy, the hop it appended; two, the one before
    settings.NUM_PROXIES = 0  # type: ignore[attr-defined]
    assert scope_client_ip(scope) == "127.0.0.1"
    settings.NUM_PROXIES = 1  # type: ignore[attr-defined]
    assert scope_client_ip(scope) == "198.51.100.4"
    settings.NUM_PROXIES = 2  # type: ignore[attr-defined]
    assert scope_client_ip(scope) == "6.6.6.6"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("index", range(len(SERVERS)), ids=SERVERS)
def test_websocket__message_far_over_the_frame_limit__is_cut_at_the_socket(
    direct_servers: list[ServerProcess], index: int
) -> None:
    # given: a signed-in websocket
    from django.conf import settings

    server = direct_servers[index]
    user = make_user(email=f"big{index}@example.com")
    body = {"identifier": user.email, "password": PASSWORD, "device": device_json()}
    token = httpx.post(f"{server.url}/api/accounts/login", json=body).json()["ticket"]
    too_big = "x" * (settings.WEBSOCKET_MAX_MESSAGE_BYTES + 1)

    async def scenario() -> str:
        async with raw_connect(server, token) as ws:
            await ws.recv()  # hello
            # when: a message larger than the server's socket limit is sent
            try:
                await ws.send(too_big)
                answer = await asyncio.wait_for(ws.recv(), timeout=30)
            except websockets.ConnectionClosed as closed:
                return f"closed {closed.rcvd.code if closed.rcvd else 'by drop'}"
            return f"answered {answer[:60]!r}"

    # then: the server cut the link (uvicorn: close 1009, message too big; daphne
    # drops the TCP connection) instead of reading the message and answering it
    assert asyncio.run(scenario()) in ("closed 1009", "closed by drop")
