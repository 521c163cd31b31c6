"""Login tickets (DESIGN.md §5; seed 000, 全程票据系统): issue, verify, require, revoke.

A ticket is `t1.<ticket id>.<43-character secret>`. The database keeps only a
SHA-256 of the secret, so a leaked table grants nothing. The edge (HTTP
authentication, websocket connect) turns the ticket into a `VerifiedTicket`;
every core data service then calls `ticket_require(ticket, user_id=…)` before
touching a user's data, so a view that passes the wrong user id is refused in
the data layer itself.

Speed and revocation. Each process caches live tickets by id, so a verified
request costs no database query. Revoking bumps the shared "tickets" version
(see wechat_core.sharedstate); every process polls that version at most every
SHARED_STATE_POLL_SECONDS and drops its cache when it changes, so a revoked
ticket is refused everywhere within that bound. `ticket_require` consults the
same cache, which also catches tickets revoked while a websocket stays open.

These functions share one private cache and the sealing key, which is why the
subsystem is one module rather than split across services.py and selectors.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.exceptions import TicketExpired, TicketInvalid, TicketRefused, TicketRevoked
from accounts.models import Device, RevocationReason, Ticket, User
from accounts.types import VerifiedTicket
from wechat_core import datacenters
from wechat_core.datacenters import require_local_id
from wechat_core.metrics import counter
from wechat_core.realtime import publish, user_group
from wechat_core.sharedstate import SharedVersion
from wechat_core.transactions import after_commit

TICKET_REFUSALS = counter(
    "accounts_ticket_refusals_total",
    "Tickets refused at the edge or in the data layer, by reason.",
    ["reason"],
    process_labels=True,
)
TICKET_VERSION = "t1"
_SECRET_BYTES = 32
_SECRET_LENGTH = 43  # url-safe base64 of 32 bytes, unpadded


@dataclass(frozen=True, slots=True)
class _Entry:
    secret_hash: str
    user_id: int
    device_id: int
    expires_at: float
    platform: str = ""
    client_version: str = ""


class _TicketCache:
    """Live tickets of this process, dropped whenever the shared version moves."""

    def __init__(self) -> None:
        self.version = SharedVersion("tickets")
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._seen: str | None = None
        self._lock = threading.Lock()

    def observe(self) -> str | None:
        """Current version, clearing the cache if it moved; pass it back to `put`."""
        version = self.version.current()
        if version != self._seen:
            with self._lock:
                if version != self._seen:
                    self._entries.clear()
                    self._seen = version
        return version

    def get(self, ticket_id: int) -> _Entry | None:
        self.observe()
        return self._entries.get(ticket_id)

    def put(self, ticket_id: int, entry: _Entry, *, loaded_under: str | None) -> None:
        # A row read before a revocation must not be cached after the cache has
        # already been cleared for that revocation.
        with self._lock:
            if loaded_under != self._seen or settings.TICKET_CACHE_MAX_ENTRIES == 0:
                return
            self._entries[ticket_id] = entry
            while len(self._entries) > settings.TICKET_CACHE_MAX_ENTRIES:
                self._entries.popitem(last=False)

    def forget(self, ticket_ids: list[int]) -> None:
        with self._lock:
            for ticket_id in ticket_ids:
                self._entries.pop(ticket_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _TicketCache()


@lru_cache(maxsize=4)
def _seal_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"wechat-ticket-seal\x00" + secret_key.encode()).digest()


def _seal(ticket_id: int, user_id: int, device_id: int, expires_at: float) -> str:
    message = f"{ticket_id}:{user_id}:{device_id}:{expires_at!r}".encode()
    return hmac.new(_seal_key(settings.SECRET_KEY), message, hashlib.sha256).hexdigest()


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _verified(ticket_id: int, entry: _Entry) -> VerifiedTicket:
    return VerifiedTicket(
        ticket_id=ticket_id,
        user_id=entry.user_id,
        device_id=entry.device_id,
        expires_at=entry.expires_at,
        seal=_seal(ticket_id, entry.user_id, entry.device_id, entry.expires_at),
        platform=entry.platform,
        client_version=entry.client_version,
    )


def _well_formed(parts: list[str]) -> bool:
    """A token's parts: the version, the ticket's id (digits), the secret."""
    return (
        len(parts) == 3
        and parts[0] == TICKET_VERSION
        and parts[1].isascii()
        and parts[1].isdigit()
        and len(parts[1]) <= 18
        and len(parts[2]) == _SECRET_LENGTH
    )


def _parse(token: str) -> tuple[int, str]:
    parts = token.split(".")
    if not _well_formed(parts):
        TICKET_REFUSALS.inc("malformed")
        raise TicketInvalid()
    return int(parts[1]), parts[2]


# --- Issue -------------------------------------------------------------------------


def ticket_issue(*, user: User, device: Device) -> tuple[str, Ticket]:
    """Create a ticket for this device. Returns the ticket text, shown only this once."""
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    ticket = Ticket.objects.create(
        user=user,
        device=device,
        secret_hash=_hash_secret(secret),
        expires_at=timezone.now() + timedelta(seconds=settings.TICKET_TTL_SECONDS),
    )
    return f"{TICKET_VERSION}.{ticket.pk}.{secret}", ticket


# --- Verify (the edge) -------------------------------------------------------------


def ticket_verify(*, token: str) -> VerifiedTicket:
    """Check a ticket presented by a client; raise TicketInvalid/Expired/Revoked."""
    ticket_id, secret = _parse(token)
    require_local_id(ticket_id)  # issued in another data centre: the user's home
    secret_hash = _hash_secret(secret)
    entry = _cache.get(ticket_id)
    if entry is None:
        version = _cache.observe()
        row = (
            Ticket.objects.filter(pk=ticket_id)
            .values_list(
                "secret_hash",
                "user_id",
                "device_id",
                "expires_at",
                "revoked_at",
                "device__platform",
                "device__client_version",
            )
            .first()
        )
        if row is None or not hmac.compare_digest(row[0], secret_hash):
            TICKET_REFUSALS.inc("invalid")
            raise TicketInvalid()
        if row[4] is not None:
            TICKET_REFUSALS.inc("revoked")
            raise TicketRevoked()
        entry = _Entry(
            secret_hash=row[0],
            user_id=row[1],
            device_id=row[2],
            expires_at=row[3].timestamp(),
            platform=row[5],
            client_version=row[6],
        )
        _cache.put(ticket_id, entry, loaded_under=version)
    elif not hmac.compare_digest(entry.secret_hash, secret_hash):
        TICKET_REFUSALS.inc("invalid")
        raise TicketInvalid()
    if entry.expires_at <= time.time():
        TICKET_REFUSALS.inc("expired")
        raise TicketExpired()
    return _verified(ticket_id, entry)


def ticket_verify_cached(*, token: str) -> VerifiedTicket | None:
    """ticket_verify for callers on an event loop (shake's fast path): the ticket
    when this process's cache proves it valid without any I/O, else None (not known
    here, the cache's version due for a re-read, malformed, wrong, expired: only
    ticket_verify can say which, and counts the refusal). Never weaker than
    ticket_verify: the same checks, on the same cached entry."""
    parts = token.split(".")
    if not _well_formed(parts):
        return None
    ticket_id = int(parts[1])
    if datacenters.enabled() and datacenters.origin_of_id(ticket_id) not in (
        None,
        datacenters.here(),
    ):
        return None  # require_local_id's case: ticket_verify sends the user home
    if not _cache.version.fresh():
        return None
    entry = _cache.get(ticket_id)
    if entry is None or not hmac.compare_digest(entry.secret_hash, _hash_secret(parts[2])):
        return None
    if entry.expires_at <= time.time():
        return None
    return _verified(ticket_id, entry)


def ticket_cache_refresh_due() -> bool:
    """Whether the tickets' shared version is due for a re-read (from Redis): then
    ticket_verify_cached answers None until `ticket_cache_refresh` ran."""
    return not _cache.version.fresh()


def ticket_cache_refresh() -> None:
    """Re-read the tickets' shared version (Redis; call it in a thread)."""
    _cache.observe()


# --- Require (the data layer) ------------------------------------------------------


def ticket_require(ticket: VerifiedTicket, *, user_id: int) -> None:
    """Refuse unless `ticket` is genuine, live, and belongs to `user_id`.

    Every service or selector that reads or writes a user's core data calls this
    first, with the id of the user whose data it is about to touch.
    """
    if not isinstance(ticket, VerifiedTicket):
        TICKET_REFUSALS.inc("not_verified")
        raise TicketRefused("A verified ticket is required.")
    expected = _seal(ticket.ticket_id, ticket.user_id, ticket.device_id, ticket.expires_at)
    if not hmac.compare_digest(ticket.seal, expected):
        TICKET_REFUSALS.inc("forged")
        raise TicketRefused("The ticket was not issued by this service.")
    if ticket.user_id != user_id:
        TICKET_REFUSALS.inc("other_user")
        raise TicketRefused()
    if ticket.expires_at <= time.time():
        TICKET_REFUSALS.inc("expired")
        raise TicketExpired()
    if _cache.get(ticket.ticket_id) is not None:
        return
    version = _cache.observe()
    row = (
        Ticket.objects.filter(pk=ticket.ticket_id, revoked_at__isnull=True)
        .values_list(
            "secret_hash",
            "user_id",
            "device_id",
            "expires_at",
            "device__platform",
            "device__client_version",
        )
        .first()
    )
    if row is None:
        TICKET_REFUSALS.inc("revoked")
        raise TicketRevoked()
    _cache.put(
        ticket.ticket_id,
        _Entry(
            secret_hash=row[0],
            user_id=row[1],
            device_id=row[2],
            expires_at=row[3].timestamp(),
            platform=row[4],
            client_version=row[5],
        ),
        loaded_under=version,
    )


def ticket_require_cached(ticket: VerifiedTicket, *, user_id: int) -> bool:
    """ticket_require answered from memory: True when the ticket passes (it raises
    like ticket_require when it does not), False when only a database look-up
    could tell, which the caller then makes (ticket_require, in a thread). For
    callers on the event loop (the websocket's send path)."""
    if isinstance(ticket, VerifiedTicket) and _cache.get(ticket.ticket_id) is None:
        return False
    ticket_require(ticket, user_id=user_id)
    return True


# --- Revoke ------------------------------------------------------------------------


def _close_connections(revoked: list[tuple[int, int]]) -> None:
    """Tell open websockets holding these (ticket, user) tickets to close (after
    commit). Should this fail, they still fail their next data access
    (ticket_require)."""
    by_user: dict[int, list[int]] = {}
    for ticket_id, user_id in revoked:
        by_user.setdefault(user_id, []).append(ticket_id)
    for user_id, ticket_ids in by_user.items():
        publish(user_group(user_id), {"type": "ticket.revoked", "tickets": ticket_ids})


def _revoke(queryset: QuerySet[Ticket], reason: RevocationReason) -> int:
    revoked = list(queryset.filter(revoked_at__isnull=True).values_list("pk", "user_id"))
    if not revoked:
        return 0
    ticket_ids = [ticket_id for ticket_id, _ in revoked]
    count = Ticket.objects.filter(pk__in=ticket_ids, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )
    # This process forgets them at once; the others when the version moves,
    # and open websockets are told to close.
    _cache.forget(ticket_ids)
    _cache.version.bump_on_commit()
    after_commit(lambda: _close_connections(revoked), name="ticket_close")
    return count


@transaction.atomic
def tickets_revoke(*, ticket_ids: list[int], reason: RevocationReason) -> int:
    return _revoke(Ticket.objects.filter(pk__in=ticket_ids), reason)


@transaction.atomic
def tickets_revoke_for_device(*, device_id: int, reason: RevocationReason) -> int:
    return _revoke(Ticket.objects.filter(device_id=device_id), reason)


@transaction.atomic
def tickets_revoke_for_user(
    *, user_id: int, reason: RevocationReason, except_ticket: int | None = None
) -> int:
    tickets = Ticket.objects.filter(user_id=user_id)
    if except_ticket is not None:
        tickets = tickets.exclude(pk=except_ticket)
    return _revoke(tickets, reason)


def tickets_purge_dead(*, keep_days: int = 30) -> int:
    """Delete tickets that expired or were revoked more than `keep_days` ago."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = Ticket.objects.filter(expires_at__lt=cutoff).delete()
    revoked, _ = Ticket.objects.filter(revoked_at__lt=cutoff).delete()
    return int(deleted + revoked)


def ticket_cache_clear() -> None:
    """Forget every cached ticket in this process (tests, and after a key rotation)."""
    _cache.clear()
