"""Reads of the accounts app. Each takes the verified ticket and the id of the user
whose data it reads, and calls ticket_require before touching anything."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Case, CharField, Exists, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.exceptions import NotAFriend, UserNotFound
from accounts.models import (
    Block,
    Device,
    FriendRequest,
    FriendRequestStatus,
    Friendship,
    Ticket,
    User,
)
from accounts.tickets import ticket_require
from accounts.types import ContactRelation, DeviceProfile, VerifiedTicket
from accounts.validators import looks_like_phone, normalize_email, normalize_phone
from wechat_core.errors import RateLimited
from wechat_core.ratelimit import window_hit

SEARCH_SCOPE = "contact-search"


def user_get(*, ticket: VerifiedTicket, user_id: int) -> User:
    ticket_require(ticket, user_id=user_id)
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise UserNotFound()
    return user


def device_list(*, ticket: VerifiedTicket, user_id: int) -> QuerySet[Device]:
    """The user's devices, each annotated with `has_live_ticket`."""
    ticket_require(ticket, user_id=user_id)
    live = Ticket.objects.filter(
        device=OuterRef("pk"), revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    return (
        Device.objects.filter(user_id=user_id, removed_at__isnull=True)
        .annotate(has_live_ticket=Exists(live))
        .order_by("-last_seen_at", "-id")
    )


def contact_search(*, ticket: VerifiedTicket, user_id: int, query: str) -> list[User]:
    """Exact search by WeChat ID (any case), phone number or e-mail, honouring each user's
    discoverability settings. Rate-limited, as it could enumerate phone numbers."""
    ticket_require(ticket, user_id=user_id)
    hits = window_hit(scope=SEARCH_SCOPE, identity=str(user_id), window_seconds=60)
    if hits.count > settings.CONTACT_SEARCHES_PER_MINUTE:
        raise RateLimited(
            f"At most {settings.CONTACT_SEARCHES_PER_MINUTE} searches a minute.",
            retry_after=hits.retry_after,
        )
    query = query.strip()
    matches: QuerySet[User] = User.objects.none()
    if "@" in query:
        try:
            email = normalize_email(query)
        except ValidationError:
            email = None
        if email is not None:
            matches = User.objects.filter(email=email, discoverable_by_email=True)
    elif looks_like_phone(query):
        try:
            phone = normalize_phone(query)
        except ValidationError:
            phone = None
        if phone is not None:
            matches = User.objects.filter(phone=phone, discoverable_by_phone=True)
    else:
        matches = User.objects.filter(wechat_id__iexact=query, discoverable_by_wechat_id=True)
    return list(matches.filter(is_active=True)[:1])


def friend_list(*, ticket: VerifiedTicket, user_id: int) -> QuerySet[Friendship]:
    ticket_require(ticket, user_id=user_id)
    return (
        Friendship.objects.filter(owner_id=user_id)
        .select_related("friend")
        .order_by("friend__nickname", "id")
    )


def friend_get(*, ticket: VerifiedTicket, user_id: int, friend_id: int) -> Friendship:
    ticket_require(ticket, user_id=user_id)
    friendship = (
        Friendship.objects.select_related("friend")
        .filter(owner_id=user_id, friend_id=friend_id)
        .first()
    )
    if friendship is None:
        raise NotAFriend()
    return friendship


def friend_request_list(
    *, ticket: VerifiedTicket, user_id: int, direction: Literal["incoming", "outgoing"]
) -> QuerySet[FriendRequest]:
    """Requests to or from the user, newest first. `effective_status` reads
    'expired' for pending requests past their expiry, before the sweep marks them."""
    ticket_require(ticket, user_id=user_id)
    own = {"to_user_id": user_id} if direction == "incoming" else {"from_user_id": user_id}
    return (
        FriendRequest.objects.filter(**own)
        .select_related("from_user", "to_user")
        .annotate(
            effective_status=Case(
                When(
                    status=FriendRequestStatus.PENDING,
                    expires_at__lte=timezone.now(),
                    then=Value(FriendRequestStatus.EXPIRED.value),
                ),
                default="status",
                output_field=CharField(),
            )
        )
        .order_by("-created_at", "-id")
    )


def users_visible(*, ticket: VerifiedTicket, user_id: int, other_ids: Iterable[int]) -> set[int]:
    """Which of `other_ids` have a public profile `user_id` may see.

    Ids reach the API from clients, who may send any number: a block or a friend
    request naming someone proves nothing about knowing them. Only the other
    side's own acts show their profile: being friends (either side's contacts),
    or their friend request to us (any status). Search shows profiles by each
    user's discoverability, when it finds them (contact_search).
    """
    ticket_require(ticket, user_id=user_id)
    ids = set(other_ids)
    them = OuterRef("pk")
    friends = Friendship.objects.filter(
        Q(owner_id=user_id, friend_id=them) | Q(owner_id=them, friend_id=user_id)
    )
    asked_us = FriendRequest.objects.filter(from_user_id=them, to_user_id=user_id)
    visible = User.objects.filter(pk__in=ids - {user_id}).filter(Exists(friends) | Exists(asked_us))
    return set(visible.values_list("pk", flat=True)) | (ids & {user_id})


def block_list(*, ticket: VerifiedTicket, user_id: int) -> QuerySet[Block]:
    ticket_require(ticket, user_id=user_id)
    return Block.objects.filter(blocker_id=user_id).select_related("blocked")


def contact_relation(*, ticket: VerifiedTicket, user_id: int, other_id: int) -> ContactRelation:
    """How `user_id` and `other_id` stand: each side's contacts and blocks.

    One round trip: every 1:1 message asks this, so it is hand-written SQL rather
    than two ORM queries (docs/performance.md).
    """
    ticket_require(ticket, user_id=user_id)
    sql = (
        f"SELECT 'friend', owner_id FROM {Friendship._meta.db_table} "  # noqa: S608 - our tables
        "WHERE (owner_id = %s AND friend_id = %s) OR (owner_id = %s AND friend_id = %s) "
        f"UNION ALL SELECT 'block', blocker_id FROM {Block._meta.db_table} "
        "WHERE (blocker_id = %s AND blocked_id = %s) OR (blocker_id = %s AND blocked_id = %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, other_id, other_id, user_id] * 2)
        rows = set(cursor.fetchall())
    return ContactRelation(
        i_have_them=("friend", user_id) in rows,
        they_have_me=("friend", other_id) in rows,
        i_blocked_them=("block", user_id) in rows,
        they_blocked_me=("block", other_id) in rows,
    )


# --- Profiles for other apps (gray-release targeting) --------------------------------

_PROFILE_FIELDS = (
    "user_id",
    "user__wechat_id",
    "user__home_datacenter_id",
    "user__home_campus_id",
    "id",
    "platform",
    "client_version",
)


def _profile(row: tuple[Any, ...]) -> DeviceProfile:
    user_id, wechat_id, datacenter, campus, device_id, platform, version = row
    return DeviceProfile(user_id, wechat_id, datacenter, campus, device_id, platform, version)


def device_profile_get(*, ticket: VerifiedTicket, user_id: int) -> DeviceProfile:
    """The user and the device this ticket belongs to."""
    ticket_require(ticket, user_id=user_id)
    row = (
        Device.objects.filter(pk=ticket.device_id, user_id=user_id)
        .values_list(*_PROFILE_FIELDS)
        .first()
    )
    if row is None:
        raise UserNotFound()
    return _profile(row)


# Operators and system tasks read these without a ticket: they act on behalf of
# no user, and see no user's messages or contacts.


def user_profile_get(*, user_id: int) -> DeviceProfile:
    """The user outside any device (a task acting for them)."""
    row = (
        User.objects.filter(pk=user_id)
        .values_list("pk", "wechat_id", "home_datacenter_id", "home_campus_id")
        .first()
    )
    if row is None:
        raise UserNotFound()
    return DeviceProfile(*row)


def device_profiles_signed_in(*, after_user_id: int, users: int) -> list[DeviceProfile]:
    """Devices holding a live ticket, of the first `users` active users with such a
    device whose id is above `after_user_id`, in user then device order: a scan of
    everyone signed in, batch by batch."""
    now = timezone.now()
    live = Ticket.objects.filter(revoked_at__isnull=True, expires_at__gt=now)
    user_ids = list(
        live.filter(user_id__gt=after_user_id, user__is_active=True)
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()[:users]
    )
    if not user_ids:
        return []
    rows = (
        Device.objects.filter(user_id__in=user_ids, removed_at__isnull=True)
        .filter(Exists(live.filter(device=OuterRef("pk"))))
        .order_by("user_id", "id")
        .values_list(*_PROFILE_FIELDS)
    )
    return [_profile(row) for row in rows]


def operators_active() -> list[User]:
    """Active staff accounts in id order: the operators monitoring notifies."""
    return list(User.objects.filter(is_staff=True, is_active=True).order_by("pk"))


def users_existing(
    *, user_ids: Iterable[int], wechat_ids: Iterable[str]
) -> tuple[set[int], set[str]]:
    """Which of these user ids and (lower-cased) WeChat IDs belong to someone."""
    ids = set(User.objects.filter(pk__in=set(user_ids)).values_list("pk", flat=True))
    wanted = {w.lower() for w in wechat_ids}
    found = {
        str(w).lower()
        for w in User.objects.annotate(wid=Lower("wechat_id"))
        .filter(wid__in=wanted)
        .values_list("wid", flat=True)
    }
    return ids, found
