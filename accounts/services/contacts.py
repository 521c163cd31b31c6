"""Contacts: friend requests (send, accept, decline, expire), friends, remarks, blocks.

Friendship is stored per side (see models.Friendship). Operations that create
friendships lock both users' rows in id order, so concurrent accepts cannot
push anyone past FRIEND_LIMIT and cannot deadlock.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.exceptions import (
    AlreadyFriends,
    BlockedByUser,
    CannotTargetSelf,
    FriendLimitReached,
    FriendRequestClosed,
    FriendRequestExpired,
    FriendRequestNotFound,
    NotAFriend,
    NotBlocked,
    UserNotFound,
    YouBlockedUser,
)
from accounts.models import Block, FriendRequest, FriendRequestStatus, Friendship, User
from accounts.replication import (
    block_deleted_replicate,
    block_replicate,
    contact_notices_split,
    friend_request_replicate,
    friendship_deleted_replicate,
    friendship_replicate,
)
from accounts.tickets import ticket_require
from accounts.types import FriendRequestOutcome, VerifiedTicket
from accounts.validators import clean_text
from wechat_core import datacenters
from wechat_core.errors import InvalidInput, RateLimited
from wechat_core.ratelimit import window_hit
from wechat_core.sync.log import entries_append
from wechat_core.sync.models import EntryKind, SyncEntry

FRIEND_REQUEST_SCOPE = "friend-requests"
BLOCK_SCOPE = "blocks"


def _clean(value: str, *, field: str, max_length: int) -> str:
    try:
        return clean_text(value, field=field, max_length=max_length)
    except ValidationError as error:
        raise InvalidInput(
            f"Invalid input: {error.messages[0]}", details={"fields": error.message_dict}
        ) from error


def _lock_pair(user_id: int, other_id: int) -> tuple[User, User]:
    """Lock both users in id order; the other must exist and be active."""
    if user_id == other_id:
        raise CannotTargetSelf()
    rows = {
        user.pk: user
        for user in User.objects.select_for_update(no_key=True)
        .filter(pk__in=[user_id, other_id])
        .order_by("pk")
    }
    other = rows.get(other_id)
    if other is None or not other.is_active:
        raise UserNotFound()
    return rows[user_id], other


def _ensure_not_blocked(me: User, them: User) -> None:
    pairs = Block.objects.filter(
        Q(blocker=them, blocked=me) | Q(blocker=me, blocked=them)
    ).values_list("blocker_id", flat=True)
    blockers = set(pairs)
    if them.pk in blockers:
        raise BlockedByUser()
    if me.pk in blockers:
        raise YouBlockedUser()


def _add_side(owner: User, friend: User, *, remark: str = "") -> Friendship:
    existing = Friendship.objects.filter(owner=owner, friend=friend).first()
    if existing is not None:
        return existing
    if Friendship.objects.filter(owner=owner).count() >= settings.FRIEND_LIMIT:
        raise FriendLimitReached(
            f"{owner.nickname} already has {settings.FRIEND_LIMIT} friends, the limit.",
            details={"user_id": owner.pk, "limit": settings.FRIEND_LIMIT},
        )
    friendship = Friendship.objects.create(owner=owner, friend=friend, remark=remark)
    friendship_replicate(friendship)
    return friendship


def _befriend(me: User, them: User, *, my_remark: str = "") -> Friendship:
    mine = _add_side(me, them, remark=my_remark)
    _add_side(them, me)
    _tell((me.pk, "friend_added", {"user": them.pk}), (them.pk, "friend_added", {"user": me.pk}))
    return mine


def _tell(*notices: tuple[int, str, dict[str, int]]) -> None:
    """Contact entries in users' sync logs: their devices refresh contacts.
    One call per transaction (see wechat_core.sync.log.entries_append). Users homed
    in another data centre get theirs there (accounts.replication)."""
    entries_append(
        [
            SyncEntry(user_id=user_id, kind=EntryKind.CONTACT, payload={"event": event, **fields})
            for user_id, event, fields in contact_notices_split(list(notices))
        ]
    )


def _pending(from_user: User, to_user: User) -> FriendRequest | None:
    return (
        FriendRequest.objects.select_for_update(no_key=True)
        .filter(from_user=from_user, to_user=to_user, status=FriendRequestStatus.PENDING)
        .first()
    )


def _throttle_daily(scope: str, user_id: int, *, limit: int, what: str) -> None:
    """Count one call naming another user, whatever its outcome: a refused or
    failed call can probe as well as a successful one."""
    hits = window_hit(scope=scope, identity=str(user_id), window_seconds=86400)
    if hits.count > limit:
        raise RateLimited(f"At most {limit} {what} a day.", retry_after=hits.retry_after)


@transaction.atomic
def friend_request_send(
    *, ticket: VerifiedTicket, user_id: int, to_user_id: int, greeting: str = ""
) -> FriendRequestOutcome:
    """Ask `to_user_id` to be friends.

    If they have already asked us, or still have us in their contacts, we become
    friends at once. Sending again while a request is pending refreshes its
    greeting and its expiry.
    """
    ticket_require(ticket, user_id=user_id)
    greeting = _clean(
        greeting, field="greeting", max_length=settings.FRIEND_REQUEST_GREETING_MAX_LENGTH
    )
    _throttle_daily(
        FRIEND_REQUEST_SCOPE,
        user_id,
        limit=settings.FRIEND_REQUESTS_PER_DAY,
        what="friend requests",
    )
    me, them = _lock_pair(user_id, to_user_id)
    _ensure_not_blocked(me, them)
    mine = Friendship.objects.filter(owner=me, friend=them).first()
    theirs_exists = Friendship.objects.filter(owner=them, friend=me).exists()
    if mine is not None and theirs_exists:
        raise AlreadyFriends()
    if theirs_exists:
        friendship = _add_side(me, them)
        _tell((me.pk, "friend_added", {"user": them.pk}))
        return FriendRequestOutcome(request=None, friendship=friendship)
    now = timezone.now()
    reverse = _pending(them, me)
    if reverse is not None and reverse.expires_at > now:
        friendship = _befriend(me, them)
        _close(reverse, FriendRequestStatus.ACCEPTED)
        return FriendRequestOutcome(request=reverse, friendship=friendship)
    if mine is None and Friendship.objects.filter(owner=me).count() >= settings.FRIEND_LIMIT:
        raise FriendLimitReached(
            f"You already have {settings.FRIEND_LIMIT} friends, the limit.",
            details={"user_id": me.pk, "limit": settings.FRIEND_LIMIT},
        )
    expires_at = now + timedelta(seconds=settings.FRIEND_REQUEST_TTL_SECONDS)
    request = _pending(me, them)
    if request is not None and request.expires_at <= now:
        _close(request, FriendRequestStatus.EXPIRED)
        request = None
    if request is None:
        request = FriendRequest.objects.create(
            from_user=me, to_user=them, greeting=greeting, created_at=now, expires_at=expires_at
        )
    else:
        request.greeting, request.created_at, request.expires_at = greeting, now, expires_at
        request.save(update_fields=["greeting", "created_at", "expires_at"])
    friend_request_replicate(request)
    _tell((them.pk, "friend_request", {"user": me.pk, "request": request.pk}))
    return FriendRequestOutcome(request=request, friendship=None)


def _close(request: FriendRequest, status: FriendRequestStatus) -> None:
    request.status = status
    request.responded_at = timezone.now()
    request.save(update_fields=["status", "responded_at"])
    friend_request_replicate(request)


def _incoming_pending(user_id: int, request_id: int) -> FriendRequest:
    request = (
        FriendRequest.objects.select_for_update(no_key=True)
        .filter(pk=request_id, to_user_id=user_id)
        .first()
    )
    if request is None:
        raise FriendRequestNotFound()
    if request.status != FriendRequestStatus.PENDING:
        raise FriendRequestClosed(
            f"The friend request was already {request.status}.", details={"status": request.status}
        )
    if request.expires_at <= timezone.now():
        raise FriendRequestExpired()
    return request


@transaction.atomic
def friend_request_accept(
    *, ticket: VerifiedTicket, user_id: int, request_id: int, remark: str = ""
) -> Friendship:
    """Accept an incoming request; returns the new friend as seen from our side."""
    ticket_require(ticket, user_id=user_id)
    remark = _clean(remark, field="remark", max_length=settings.FRIEND_REMARK_MAX_LENGTH)
    request = _incoming_pending(user_id, request_id)
    me, them = _lock_pair(user_id, request.from_user_id)
    _ensure_not_blocked(me, them)
    friendship = _befriend(me, them, my_remark=remark)
    _close(request, FriendRequestStatus.ACCEPTED)
    return friendship


@transaction.atomic
def friend_request_decline(
    *, ticket: VerifiedTicket, user_id: int, request_id: int
) -> FriendRequest:
    ticket_require(ticket, user_id=user_id)
    request = _incoming_pending(user_id, request_id)
    _close(request, FriendRequestStatus.DECLINED)
    return request


def friend_requests_expire() -> int:
    """Mark pending requests past their expiry as expired (Celery beat runs this).

    With several data centres each one expires the requests it masters (written
    there, at the sender's home: the id lies in its block) and replicates them like
    any other closing; a copy of one mastered elsewhere waits for its master's entry
    (meanwhile it cannot be accepted here: acceptance checks `expires_at`)."""
    due = FriendRequest.objects.filter(
        status=FriendRequestStatus.PENDING, expires_at__lte=timezone.now()
    )
    if not datacenters.enabled():
        return due.update(status=FriendRequestStatus.EXPIRED, responded_at=timezone.now())
    with transaction.atomic():
        # skip_locked: a request being answered right now is left to its answer.
        mastered = [
            request
            for request in due.select_for_update(no_key=True, skip_locked=True).order_by("pk")
            if (datacenters.origin_of_id(request.pk) or datacenters.here()) == datacenters.here()
        ]
        for request in mastered:
            _close(request, FriendRequestStatus.EXPIRED)
    return len(mastered)


def _my_side(user_id: int, friend_id: int) -> Friendship:
    friendship = (
        Friendship.objects.select_for_update(no_key=True)
        .select_related("friend")
        .filter(owner_id=user_id, friend_id=friend_id)
        .first()
    )
    if friendship is None:
        raise NotAFriend()
    return friendship


@transaction.atomic
def friend_set_remark(
    *, ticket: VerifiedTicket, user_id: int, friend_id: int, remark: str
) -> Friendship:
    ticket_require(ticket, user_id=user_id)
    remark = _clean(remark, field="remark", max_length=settings.FRIEND_REMARK_MAX_LENGTH)
    friendship = _my_side(user_id, friend_id)
    friendship.remark = remark
    friendship.save(update_fields=["remark"])
    friendship_replicate(friendship)
    return friendship


@transaction.atomic
def friend_delete(*, ticket: VerifiedTicket, user_id: int, friend_id: int) -> None:
    """Remove a friend from our contacts (their side stays, as in WeChat)."""
    ticket_require(ticket, user_id=user_id)
    _my_side(user_id, friend_id).delete()
    friendship_deleted_replicate(user_id, friend_id)


@transaction.atomic
def user_block(*, ticket: VerifiedTicket, user_id: int, target_id: int) -> Block:
    """Block a user: they can no longer send us requests or messages.

    Pending requests between the two are declined; contacts are kept, as in
    WeChat's blacklist, and return to normal on unblock.
    """
    ticket_require(ticket, user_id=user_id)
    _throttle_daily(BLOCK_SCOPE, user_id, limit=settings.BLOCKS_PER_DAY, what="blocks")
    me, them = _lock_pair(user_id, target_id)
    block, _ = Block.objects.get_or_create(blocker=me, blocked=them)
    # Again when it existed already: a copy that missed it (a block made before
    # blocks were replicated) gets it then.
    block_replicate(block)
    # One by one (at most one each way), each closed like any other so that the
    # other data centres' copies are declined too.
    for request in FriendRequest.objects.select_for_update(no_key=True).filter(
        Q(from_user=them, to_user=me) | Q(from_user=me, to_user=them),
        status=FriendRequestStatus.PENDING,
    ):
        _close(request, FriendRequestStatus.DECLINED)
    return block


@transaction.atomic
def user_unblock(*, ticket: VerifiedTicket, user_id: int, target_id: int) -> None:
    ticket_require(ticket, user_id=user_id)
    deleted, _ = Block.objects.filter(blocker_id=user_id, blocked_id=target_id).delete()
    if not deleted:
        raise NotBlocked()
    block_deleted_replicate(user_id, target_id)
