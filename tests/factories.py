"""Test data built through the real services, so every object honours the invariants.

alice = make_user(nickname="Alice")
ticket = login_ticket(alice)
make_friends(alice, bob)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from accounts.models import FriendRequest, Platform, User
from accounts.services.contacts import friend_request_accept, friend_request_send
from accounts.services.login import login
from accounts.services.registration import user_create
from accounts.services.wechat_ids import wechat_id_claim
from accounts.tickets import ticket_verify
from accounts.types import DeviceInfo, VerifiedTicket
from grayrelease.models import Feature
from grayrelease.services.features import feature_create
from grayrelease.types import FeatureSpec

PASSWORD = "correct-horse-battery"
_sequence = itertools.count(1)


def web_device(**overrides: Any) -> DeviceInfo:
    values: dict[str, Any] = {"platform": Platform.WEB, "client_version": "3.0.0", "name": "test"}
    values.update(overrides)
    return DeviceInfo(**values)


def device_json(**overrides: Any) -> dict[str, Any]:
    """The `device` object of a login or registration body."""
    values: dict[str, Any] = {"platform": "web", "client_version": "3.0.0", "name": "test"}
    values.update(overrides)
    return values


def unique_phone() -> str:
    return f"+86139{next(_sequence) % 100_000_000:08d}"


def make_user(
    *,
    nickname: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    password: str = PASSWORD,
    wechat_id: str | None = None,
) -> User:
    number = next(_sequence)
    user = user_create(
        phone=phone,
        email=email if email is not None or phone is not None else f"user{number}@example.com",
        password=password,
        nickname=nickname or f"User {number}",
    )
    if wechat_id is not None:
        wechat_id_claim(ticket=login_ticket(user), user_id=user.pk, wechat_id=wechat_id)
        user.refresh_from_db()
    return user


@dataclass(frozen=True)
class Session:
    user: User
    token: str
    ticket: VerifiedTicket
    device_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Ticket {self.token}"}


def login_session(user: User, *, password: str = PASSWORD, **device: Any) -> Session:
    identifier = user.email or user.phone or ""
    result = login(identifier=identifier, password=password, device=web_device(**device), ip=None)
    return Session(
        user=user,
        token=result.ticket,
        ticket=ticket_verify(token=result.ticket),
        device_id=result.device.pk,
    )


def login_ticket(user: User) -> VerifiedTicket:
    return login_session(user).ticket


def make_friends(first: User, second: User) -> None:
    outcome = friend_request_send(
        ticket=login_ticket(first), user_id=first.pk, to_user_id=second.pk
    )
    assert outcome.request is not None
    friend_request_accept(
        ticket=login_ticket(second), user_id=second.pk, request_id=outcome.request.pk
    )


def befriend_sessions(first: Session, others: list[Session]) -> None:
    """Make `first` friends with each of `others`, through requests and accepts made
    with these sessions' tickets (no login per friendship: a 500-member group's
    setup logged in 1,500 times)."""
    for other in others:
        outcome = friend_request_send(
            ticket=first.ticket, user_id=first.user.pk, to_user_id=other.user.pk
        )
        assert outcome.request is not None
        friend_request_accept(
            ticket=other.ticket, user_id=other.user.pk, request_id=outcome.request.pk
        )


def send_request(sender: User, recipient: User, greeting: str = "") -> FriendRequest:
    outcome = friend_request_send(
        ticket=login_ticket(sender), user_id=sender.pk, to_user_id=recipient.pk, greeting=greeting
    )
    assert outcome.request is not None
    return outcome.request


def befriend_all(user: User, others: list[User]) -> None:
    """Make `user` friends with each of `others` through requests and accepts."""
    ticket = login_ticket(user)
    for other in others:
        outcome = friend_request_send(ticket=ticket, user_id=user.pk, to_user_id=other.pk)
        if outcome.request is not None and outcome.friendship is None:
            friend_request_accept(
                ticket=login_ticket(other), user_id=other.pk, request_id=outcome.request.pk
            )


def make_feature(key: str, **spec: Any) -> Feature:
    """A feature through the real service (validated, audited, published)."""
    return feature_create(spec=FeatureSpec(key=key, **spec), actor=None)


# --- Official accounts (publicplatform) ---------------------------------------------------


def make_official_account(
    *, name: str = "Test Account", owner: User | None = None, greeting: str = ""
) -> tuple[Any, str]:
    """A new official account and its AppSecret (through the real service)."""
    from publicplatform.services.accounts import account_create

    created = account_create(name=name, owner_id=owner.pk if owner else None, greeting=greeting)
    return created.account, created.secret


def configure_server(
    account: Any,
    *,
    url: str,
    token: str = "testtoken123",  # noqa: S107 - a test server's Token
    aes_key: str = "",
    mode: str = "plain",
) -> Any:
    """Point the account at a developer server (the real handshake runs)."""
    from publicplatform.services.accounts import account_server_configure

    account_server_configure(
        account=account, server_url=url, token=token, encoding_aes_key=aes_key, mode=mode
    )
    account.refresh_from_db()
    return account


def make_follower(user: User, account: Any) -> Any:
    from publicplatform.services.followers import account_follow

    return account_follow(ticket=login_ticket(user), user_id=user.pk, account_id=account.pk)


# --- Wallet -------------------------------------------------------------------------------


def fund_wallet(user: User, amount: int, *, key: str | None = None) -> Any:
    """Credit `amount` fen to the user's wallet from the provider's clearing account,
    as a paid top-up does (through the real ledger service). Returns the wallet."""
    from wallet.models import TransactionKind
    from wallet.services.ledger import clearing_account_open, ledger_transfer, wallet_account_open
    from wallet.types import Leg

    wallet = wallet_account_open(user_id=user.pk)
    clearing = clearing_account_open()
    ledger_transfer(
        idempotency_key=key or f"test-fund:{user.pk}:{next(_sequence)}",
        kind=TransactionKind.TOPUP,
        reason="Top-up",
        legs=[Leg(clearing.pk, -amount), Leg(wallet.pk, amount)],
    )
    wallet.refresh_from_db()
    return wallet
