"""Load demo data for the embedded mode; running it again changes nothing.

Two chat users who are friends (alice, bob), a third (carol) with a pending
friend request to alice, an operator, and official accounts: the seed's `szdy`
pool (searching "szdy" finds one of szdy01…szdy10 at random) and 微成都, which
Bob develops and which answers keywords and its menu without a server. Contacts
are made through the real services, with tickets, exactly as the clients would.
Two gray-release features show in the admin: the web client's chat search, on
for Alice only, and a server-side feature at 5 % with the standard schedule
ready to start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from accounts.models import FriendRequest, Friendship, Platform, User
from accounts.services.contacts import friend_request_accept, friend_request_send
from accounts.services.devices import logout
from accounts.services.login import login
from accounts.services.operators import operator_grant
from accounts.services.registration import user_create
from accounts.services.wechat_ids import wechat_id_claim
from accounts.tickets import ticket_verify
from accounts.types import DeviceInfo, VerifiedTicket
from demo.official_accounts import demo_accounts_ensure
from grayrelease.selectors import feature_list
from grayrelease.services.features import feature_create
from grayrelease.types import FeatureSpec, GuardSpec, StageSpec
from wechat_core.services import topology_ensure_local


@dataclass(frozen=True)
class DemoAccount:
    nickname: str
    email: str
    phone: str
    password: str
    wechat_id: str | None


ALICE = DemoAccount("Alice", "alice@example.com", "+8613800000001", "alice-demo-2026", "alice_demo")
BOB = DemoAccount("Bob", "bob@example.com", "+8613800000002", "bob-demo-2026", "bob_demo")
CAROL = DemoAccount("Carol", "carol@example.com", "+8613800000003", "carol-demo-2026", "carol_demo")
OPERATOR = DemoAccount("Operator", "ops@example.com", "+8613800000009", "ops-demo-2026", None)
# One fixed device, so repeated runs reuse it instead of piling up devices.
DEMO_DEVICE = DeviceInfo(
    platform=Platform.OTHER,
    client_version="1.0.0",
    name="createdemo",
    device_uuid=UUID("00000000-0000-4000-8000-00000000de70"),
)


DEMO_FEATURES = (
    FeatureSpec(
        key="web.chat_search",
        description="A search box above the web client's chat list. On for Alice (allow "
        "list) to try; raise the percentage or tick platforms to widen it.",
        client_visible=True,
        allow=("alice_demo",),
    ),
    FeatureSpec(
        key="messaging.voice_messages",
        description="Voice messages (server side): at 5 %, with the standard schedule "
        "ready to start from the list's actions.",
        percentage_bp=500,
        stages=tuple(
            StageSpec(bp, m) for bp, m in ((500, 60), (2000, 120), (5000, 240), (10_000, 0))
        ),
    ),
    FeatureSpec(
        key="messaging.spam_filter_candidate",
        description="A new spam filter (MESSAGING_SPAM_FILTER_CANDIDATE) for the senders in "
        "its rollout; guarded: the schedule pauses by itself if the candidate fails more "
        "than the current filter.",
        stages=tuple(StageSpec(bp, m) for bp, m in ((100, 60), (1000, 120), (10_000, 0))),
        guard=GuardSpec(margin_bp=100, min_sample=100, window_seconds=600),
    ),
)


def _ensure_features(operator: User) -> None:
    existing = set(feature_list().values_list("key", flat=True))
    for spec in DEMO_FEATURES:
        if spec.key not in existing:
            feature_create(spec=spec, actor=operator, comment="demo data")


@contextmanager
def _logged_in(account: DemoAccount) -> Iterator[VerifiedTicket]:
    """A ticket for `account` on the demo device, logged out afterwards."""
    session = login(
        identifier=account.email, password=account.password, device=DEMO_DEVICE, ip=None
    )
    ticket = ticket_verify(token=session.ticket)
    try:
        yield ticket
    finally:
        logout(ticket=ticket, user_id=session.user.pk)


def _ensure(account: DemoAccount) -> User:
    user = User.objects.filter(email=account.email).first() or user_create(
        phone=account.phone,
        email=account.email,
        password=account.password,
        nickname=account.nickname,
    )
    if account.wechat_id and not user.wechat_id:
        with _logged_in(account) as ticket:
            user = wechat_id_claim(ticket=ticket, user_id=user.pk, wechat_id=account.wechat_id)
    return user


def _official_accounts(*, owner: User) -> None:
    demo_accounts_ensure(owner_id=owner.pk)


def _is_embedded_demo() -> bool:
    """The embedded mode of `make run` on its SQLite file: a demo on one machine."""
    return settings.EMBEDDED and connection.vendor == "sqlite"


class Command(BaseCommand):
    help = (
        "Create the demo users, contacts and operator (idempotent). Their passwords are "
        "published in the README, so this runs only on the embedded SQLite database of "
        "`make run` unless --any-database is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--any-database",
            action="store_true",
            help="Create the demo accounts, a superuser among them, whatever the database "
            "(never on one that others can reach).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not (_is_embedded_demo() or options["any_database"]):
            raise CommandError(
                "createdemo makes accounts whose passwords are published in the README, a "
                "superuser (ops@example.com) among them, so it runs only on the embedded "
                f"SQLite database of `make run`; this is {connection.vendor} "
                f"{'with' if not settings.EMBEDDED else 'without'} REDIS_URL. Create real "
                "operators with `manage.py createoperator` (or pass --any-database for a "
                "private test database)."
            )
        self._create()

    @transaction.atomic
    def _create(self) -> None:
        topology_ensure_local()
        alice, bob, carol = _ensure(ALICE), _ensure(BOB), _ensure(CAROL)
        if not Friendship.objects.filter(owner=alice, friend=bob).exists():
            with _logged_in(ALICE) as ticket:
                outcome = friend_request_send(
                    ticket=ticket,
                    user_id=alice.pk,
                    to_user_id=bob.pk,
                    greeting="Hi Bob, it's Alice.",
                )
            if outcome.request is not None:  # None: Bob still had Alice, restored at once
                with _logged_in(BOB) as ticket:
                    friend_request_accept(
                        ticket=ticket, user_id=bob.pk, request_id=outcome.request.pk
                    )
        if not FriendRequest.objects.filter(from_user=carol, to_user=alice).exists():
            with _logged_in(CAROL) as ticket:
                friend_request_send(
                    ticket=ticket,
                    user_id=carol.pk,
                    to_user_id=alice.pk,
                    greeting="Hello from Carol!",
                )
        operator = operator_grant(user=_ensure(OPERATOR), superuser=True)
        _ensure_features(operator)
        _official_accounts(owner=bob)
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))
        self.stdout.write(
            "  These passwords are published (README): this database is a demo, "
            "for this machine only."
        )
        for account in (ALICE, BOB, CAROL):
            self.stdout.write(f"  chat user  {account.email} / {account.password}")
        self.stdout.write(f"  operator   {OPERATOR.email} / {OPERATOR.password}  (superuser)")
        self.stdout.write(
            "  official accounts: search 'szdy' or '微成都' in Contacts → Official accounts;"
        )
        self.stdout.write("  Bob develops 微成都 at /platform/")
