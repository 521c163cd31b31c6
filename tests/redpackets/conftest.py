"""Fixtures of the red-packet tests: friends with a 1:1 chat, groups, funded wallets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from devtools.processes import ServerProcess
from messaging.services.conversations import direct_open, group_create
from redpackets.services.sending import PacketRequest
from tests.factories import Session, befriend_sessions, fund_wallet, login_session, make_user


@pytest.fixture
def balanced_now(db: None) -> None:
    """Check each ledger transaction's zero sum at once, not at commit (tests inside a
    rolled-back transaction never commit; see tests/wallet/conftest.py)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS wallet_posting_balanced IMMEDIATE")


@dataclass(frozen=True)
class Chat:
    conversation: int
    sessions: list[Session]  # sessions[0] sends (and owns a group)

    @property
    def sender(self) -> Session:
        return self.sessions[0]


def direct_chat(balance: int = 100_000) -> Chat:
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    sessions = [login_session(alice), login_session(bob)]
    befriend_sessions(sessions[0], sessions[1:])
    chat = direct_open(ticket=sessions[0].ticket, user_id=alice.pk, peer_id=bob.pk)
    fund_wallet(alice, balance)
    return Chat(chat.pk, sessions)


def group_chat(size: int, balance: int = 100_000) -> Chat:
    """A group of `size` members, the first its owner (with `balance` fen), all logged in."""
    owner = make_user(nickname="Owner")
    others = [make_user(nickname=f"Member {n}") for n in range(size - 1)]
    sessions = [login_session(owner)] + [login_session(user) for user in others]
    befriend_sessions(sessions[0], sessions[1:])
    group = group_create(
        ticket=sessions[0].ticket, user_id=owner.pk, name="Family",
        member_ids=[user.pk for user in others],
    )  # fmt: skip
    fund_wallet(owner, balance)
    return Chat(group.pk, sessions)


def packet_request(chat: Chat, **fields: object) -> PacketRequest:
    values: dict[str, object] = {
        "conversation_id": chat.conversation,
        "client_id": f"rp-{id(fields)}-{len(fields)}",
        "kind": "lucky",
        "total_amount": 1000,
        "shares": 1,
        "greeting": "Happy new year",
    }
    values.update(fields)
    return PacketRequest(**values)  # type: ignore[arg-type]


# Settings of the red-packet stack's processes: the sweep re-enqueues arriving grabs
# after 2 s, every second, so a worker that comes back is seen doing it.
# Few database connections per process: PostgreSQL's 100 are shared.
REDPACKETS_ENV = {
    "REDPACKETS_CREDIT_SWEEP_AFTER_SECONDS": "2",
    "REDPACKETS_CREDIT_SWEEP_SECONDS": "1",
    "DATABASE_POOL_MAX_SIZE": "20",
}


@pytest.fixture(scope="module")
def redpackets_broker(live_log_dir: Path) -> Iterator[str]:
    """A private Redis broker, so that only this module's worker takes its tasks."""
    from devtools.processes import start_redis

    broker = start_redis(log_dir=live_log_dir)
    yield f"{broker.url}/0"
    broker.stop()


@pytest.fixture(scope="module")
def redpackets_env(live_env: dict[str, str], redpackets_broker: str) -> dict[str, str]:
    return (
        live_env
        | REDPACKETS_ENV
        | {
            "CELERY_BROKER_URL": redpackets_broker,
            "CELERY_RESULT_BACKEND": redpackets_broker,
        }
    )


@pytest.fixture(scope="module")
def redpackets_server(
    redpackets_env: dict[str, str], live_log_dir: Path
) -> Iterator[ServerProcess]:
    """A daphne of its own, enqueueing credits on the private broker."""
    from devtools.processes import start_asgi_server

    server = start_asgi_server(log_dir=live_log_dir, env=redpackets_env, name="daphne-rp")
    yield server
    server.stop()
