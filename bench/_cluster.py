"""Our side of the messaging benchmarks: the production process layout (one ASGI
server of the chosen kind, a Celery worker on every queue) on PostgreSQL and
Redis, and users, friendships, chats and groups made through the real services.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _setup import configure

BENCH_PASSWORD = "bench-passphrase-1"


@dataclass(frozen=True)
class Member:
    user_id: int
    ticket: str


class Cluster:
    """`with Cluster("uvicorn") as cluster:` — servers stop when the block ends."""

    def __init__(self, server: str = "daphne", **env_overrides: str) -> None:
        self.kind = server
        self.base_env = configure()
        self.env = {
            **self.base_env,
            "LOG_LEVEL": "WARNING",
            "MESSAGING_SENDS_PER_MINUTE": "10000000",
            "REGISTRATIONS_PER_IP_PER_HOUR": "10000000",
            **env_overrides,
        }
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"bench-{server}-"))
        self.processes: list[Any] = []

    def __enter__(self) -> Cluster:
        from devtools.processes import collect_static, start_asgi_server, start_celery_worker

        collect_static(self.env)
        self.server = start_asgi_server(log_dir=self.log_dir, env=self.env, server=self.kind)
        self.worker = start_celery_worker(
            log_dir=self.log_dir, env=self.env, queues="delivery,default", name="bench"
        )
        self.processes = [self.server, self.worker]
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.stop()

    @property
    def url(self) -> str:
        return str(self.server.url)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/sync"

    @property
    def pid(self) -> int:
        return int(self.server.process.pid)


def parse_variants(text: str) -> dict[str, dict[str, str]]:
    """`--variants 'name:KEY=VALUE,KEY=VALUE;name:...'`: each variant's environment
    overrides for its server (one unnamed variant without overrides when empty)."""
    if not text:
        return {"": {}}
    found: dict[str, dict[str, str]] = {}
    for part in text.split(";"):
        name, _, assignments = part.partition(":")
        found[name] = dict(item.split("=", 1) for item in assignments.split(",") if "=" in item)
    return found


def _user(prefix: str) -> Any:
    from accounts.services.registration import user_create

    return user_create(
        phone=None,
        email=f"{prefix}-{uuid.uuid4().hex[:10]}@bench.example.com",
        password=BENCH_PASSWORD,
        nickname=prefix,
    )


def _ticket(user: Any) -> str:
    from accounts.models import Platform
    from accounts.services.login import login
    from accounts.types import DeviceInfo

    device = DeviceInfo(platform=Platform.OTHER, client_version="3.0.0", name="bench")
    return login(identifier=user.email, password=BENCH_PASSWORD, device=device, ip=None).ticket


def _befriend(first: Any, second: Any) -> None:
    from accounts.services.contacts import friend_request_accept, friend_request_send
    from accounts.tickets import ticket_verify

    outcome = friend_request_send(
        ticket=ticket_verify(token=_ticket(first)), user_id=first.pk, to_user_id=second.pk
    )
    assert outcome.request is not None
    friend_request_accept(
        ticket=ticket_verify(token=_ticket(second)),
        user_id=second.pk,
        request_id=outcome.request.pk,
    )


def make_pairs(count: int) -> list[tuple[Member, Member, int]]:
    """`count` pairs of friends with their 1:1 chat: (sender, receiver, conversation)."""
    from accounts.tickets import ticket_verify
    from messaging.services.conversations import direct_open

    pairs = []
    for _ in range(count):
        first, second = _user("sender"), _user("receiver")
        _befriend(first, second)
        ticket = _ticket(first)
        chat = direct_open(ticket=ticket_verify(token=ticket), user_id=first.pk, peer_id=second.pk)
        pairs.append((Member(first.pk, ticket), Member(second.pk, _ticket(second)), chat.pk))
    return pairs


def make_group(size: int) -> tuple[int, list[Member]]:
    """A group of `size` members (the owner first), each with a ticket."""
    from django.conf import settings

    from accounts.services.contacts import friend_request_accept, friend_request_send
    from accounts.tickets import ticket_verify
    from messaging.services.conversations import group_create

    settings.FRIEND_REQUESTS_PER_DAY = max(settings.FRIEND_REQUESTS_PER_DAY, size * 2)
    owner = _user("owner")
    owner_ticket = _ticket(owner)
    verified = ticket_verify(token=owner_ticket)
    members = [Member(owner.pk, owner_ticket)]
    for _ in range(size - 1):
        user = _user("member")
        ticket = _ticket(user)
        outcome = friend_request_send(ticket=verified, user_id=owner.pk, to_user_id=user.pk)
        assert outcome.request is not None
        friend_request_accept(
            ticket=ticket_verify(token=ticket), user_id=user.pk, request_id=outcome.request.pk
        )
        members.append(Member(user.pk, ticket))
    group = group_create(
        ticket=verified, user_id=owner.pk, name="bench", member_ids=[m.user_id for m in members[1:]]
    )
    return group.pk, members


def make_idle_tickets(count: int) -> list[str]:
    """`count` distinct users, each with one device and a fresh ticket.

    The users stay in the benchmark database between runs. They are made with a
    fast password hasher: nothing in these benchmarks checks their passwords,
    and argon2 would make setting up ten thousand of them take an hour.
    """
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers
    from django.db import transaction

    from accounts.models import Device, Platform, User
    from accounts.services.devices import device_register_login
    from accounts.services.registration import user_create
    from accounts.tickets import ticket_issue
    from accounts.types import DeviceInfo

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()  # type: ignore[attr-defined]
    emails = [f"idle-{n}@bench.example.com" for n in range(count)]
    existing = {user.email: user for user in User.objects.filter(email__in=emails)}
    info = DeviceInfo(platform=Platform.OTHER, client_version="3.0.0", name="idle")
    tickets = []
    for n, email in enumerate(emails):
        user = existing.get(email) or user_create(
            phone=None, email=email, password=BENCH_PASSWORD, nickname=f"idle {n}"
        )
        with transaction.atomic():
            device = Device.objects.filter(user=user, removed_at__isnull=True).first()
            if device is None:
                device = device_register_login(user=user, info=info, ip=None)
            token, _ = ticket_issue(user=user, device=device)
        tickets.append(token)
    return tickets
