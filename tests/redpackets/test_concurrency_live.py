"""Red packets under real concurrency on PostgreSQL: real websockets against a real
ASGI server, a real Celery worker crediting on `payout_fast`, threads with their
own connections. Amounts are checked against the ledger, never assumed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db.models import Sum

from devtools.processes import ServerProcess, start_celery_worker
from redpackets.models import CreditState, Grab, Packet
from redpackets.services.sending import packet_send
from tests.redpackets.conftest import Chat, group_chat, packet_request
from tests.support.chat import Raw, raw_connect, run
from tests.support.concurrency import run_together
from tests.support.waiting import eventually
from wallet.exceptions import InsufficientFunds
from wallet.models import LedgerAccount, LedgerTransaction
from wallet.reconcile import wallet_reconcile

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


# Per test: a worker of the module's left on its queue would credit what the
# killed-worker test needs to see "arriving" (it did, once starts got faster).
@pytest.fixture
def crediting_worker(redpackets_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    worker = start_celery_worker(
        log_dir=live_log_dir, env=redpackets_env, queues="payout_fast", beat=True,
        name="redpackets-hot",
    )  # fmt: skip
    yield worker
    worker.stop()


CONNECT_WAVE = 50


def _escrow(packet: Packet) -> int:
    return LedgerAccount.objects.get(pk=packet.escrow_id).balance


async def _grab_all(server: ServerProcess, chat: Chat, packet_id: int) -> list[dict[str, Any]]:
    """Every member (the sender too: in a group they may) on their own websocket, all
    grabbing at once."""
    grabbers = chat.sessions
    contexts = [raw_connect(server, session.token) for session in grabbers]
    sockets: list[Any] = []
    # Connected in waves: the race under test is the grab, not 500 handshakes at once
    # (a busy machine makes daphne give up on handshakes it cannot finish in 5 s).
    for start in range(0, len(contexts), CONNECT_WAVE):
        wave = contexts[start : start + CONNECT_WAVE]
        sockets += await asyncio.gather(*(context.__aenter__() for context in wave))
    try:
        links = [Raw(ws) for ws in sockets]
        for link in links:  # the hello frame: each link is attached before the race
            assert (await link.recv(30))["type"] == "hello"
        frames = [
            {"type": "redpacket.grab", "id": f"g{index}", "packet": packet_id}
            for index in range(len(links))
        ]
        return list(
            await asyncio.gather(
                *(link.reply_to(frame, 60) for link, frame in zip(links, frames, strict=True))
            )
        )
    finally:
        await asyncio.gather(
            *(context.__aexit__(None, None, None) for context in contexts[: len(sockets)])
        )


def test_hot_packet__500_members_grab_100_shares_at_once__exactly_100_winners_sum_exact(
    redpackets_server: ServerProcess, crediting_worker: ServerProcess, settings: Any
) -> None:
    # given: a 500-member group (its owner befriends everyone first) and a lucky
    # packet of 200 CNY in 100 shares
    settings.FRIEND_REQUESTS_PER_DAY = 1000
    chat = group_chat(500, balance=20_000)
    owner = chat.sender
    packet = packet_send(
        ticket=owner.ticket,
        user_id=owner.user.pk,
        request=packet_request(chat, total_amount=20_000, shares=100),
    ).packet
    # when: the 500 members grab over websockets at the same moment
    answers = run(_grab_all(redpackets_server, chat, packet.pk), timeout=300)
    # then: every one answered; exactly 100 won, nobody twice, the shares sum exactly
    assert all(answer["type"] == "redpacket.grab.ack" for answer in answers), answers[:3]
    outcomes = [answer["outcome"] for answer in answers]
    assert outcomes.count("grabbed") == 100
    assert outcomes.count("finished") == 400
    grabs = list(Grab.objects.filter(packet=packet))
    assert len(grabs) == 100
    assert len({g.user_id for g in grabs}) == 100
    assert sorted(g.share_index for g in grabs) == list(range(100))
    assert sum(g.amount for g in grabs) == 20_000
    assert min(g.amount for g in grabs) >= 1
    won = {a["amount"] for a in answers if a["outcome"] == "grabbed"}
    assert sum(a["amount"] for a in answers if a["outcome"] == "grabbed") == 20_000
    assert won <= {g.amount for g in grabs}
    # and once the worker has credited every grab, the escrow is empty
    eventually(
        lambda: not Grab.objects.filter(packet=packet, credit_state="arriving").exists(),
        what="every grab credited",
    )
    assert _escrow(packet) == 0
    assert LedgerTransaction.objects.filter(kind="packet_grab").count() == 100
    report = wallet_reconcile()
    assert (report.account_mismatch_count, report.unbalanced_count) == (0, 0)


def test_concurrent_sends__from_one_wallet__never_overdraw_it() -> None:
    # given: 1000 fen and 30 packets of 70 fen sent at once (2100 fen asked)
    chat = group_chat(3, balance=1000)
    owner = chat.sender

    def send(index: int) -> Callable[[], Any]:
        request = packet_request(chat, client_id=f"race-{index}", total_amount=70, shares=2)
        return lambda: packet_send(ticket=owner.ticket, user_id=owner.user.pk, request=request)

    outcomes = run_together([send(index) for index in range(30)])
    # then: 14 went out, 16 were refused for the balance, and the books agree
    sent = [o for o in outcomes if o.error is None]
    refused = [o for o in outcomes if isinstance(o.error, InsufficientFunds)]
    assert (len(sent), len(refused)) == (14, 16), [o.error for o in outcomes if o.error][:3]
    wallet = LedgerAccount.objects.get(kind="wallet", user_id=owner.user.pk)
    assert wallet.balance == 20
    assert Packet.objects.filter(sender=owner.user).count() == 14
    escrowed = Packet.objects.aggregate(total=Sum("total_amount"))["total"]
    assert escrowed == 980
    assert wallet_reconcile().account_mismatch_count == 0


def _kill_with_children(worker: ServerProcess) -> None:
    """SIGKILL the worker and the processes it forked (its beat): a killed parent
    does not take a child with it, and an orphaned beat would keep running."""
    pid = worker.process.pid
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    worker.process.kill()
    worker.process.wait(timeout=10)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def _grab_over_http(server: ServerProcess, session: Any, packet_id: int) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, headers=session.headers, timeout=30) as client:
        response = client.post(f"/api/redpackets/{packet_id}/grab")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_crediting_worker__killed_mid_stream_and_restarted__credits_every_grab_exactly_once(
    redpackets_server: ServerProcess, redpackets_env: dict[str, str], live_log_dir: Path
) -> None:
    # given: a worker crediting a 40-share packet's grabs as they come
    chat = group_chat(41, balance=20_000)
    owner = chat.sender
    packet = packet_send(
        ticket=owner.ticket,
        user_id=owner.user.pk,
        request=packet_request(chat, total_amount=8000, shares=40),
    ).packet
    worker = start_celery_worker(
        log_dir=live_log_dir, env=redpackets_env, queues="payout_fast", beat=True,
        name="redpackets-kill-1",
    )  # fmt: skip
    grabbers = chat.sessions[1:]
    try:
        for session in grabbers[:20]:
            _grab_over_http(redpackets_server, session, packet.pk)
        eventually(
            lambda: Grab.objects.filter(credit_state=CreditState.CREDITED).exists(),
            what="a first credit",
        )
        # when: the worker is killed outright (no warm shutdown), grabs go on
        _kill_with_children(worker)
        for session in grabbers[20:]:
            answer = _grab_over_http(redpackets_server, session, packet.pk)
            # the user's action does not wait for the worker: the amount is "arriving"
            assert (answer["outcome"], answer["credit"]) == ("grabbed", "arriving")
        assert Grab.objects.filter(credit_state=CreditState.ARRIVING).exists()
    finally:
        worker.stop()
    # then: a new worker (its beat sweeps arriving grabs) credits the rest
    restarted = start_celery_worker(
        log_dir=live_log_dir, env=redpackets_env, queues="payout_fast", beat=True,
        name="redpackets-kill-2",
    )  # fmt: skip
    try:
        eventually(
            lambda: not Grab.objects.filter(credit_state=CreditState.ARRIVING).exists(),
            what="every grab credited after the restart",
        )
    finally:
        restarted.stop()
    # exactly once: one ledger credit per grab, each wallet holding its grab's amount
    grabs = list(Grab.objects.filter(packet=packet))
    assert len(grabs) == 40
    keys = set(
        LedgerTransaction.objects.filter(kind="packet_grab").values_list(
            "idempotency_key", flat=True
        )
    )
    assert keys == {f"redpacket:{packet.pk}:grab:{g.pk}" for g in grabs}
    for grab in grabs:
        assert LedgerAccount.objects.get(kind="wallet", user_id=grab.user_id).balance == (
            grab.amount
        )
    assert _escrow(packet) == 0
