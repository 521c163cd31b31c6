"""What accounts replicate between data centres (issue 17), and how it is applied.

Every data centre keeps a copy of every user (the login identifiers, the password
hash so a login at the wrong data centre can be told where home is, the public
profile, the home), and of the contact rows between users homed in different
data centres. Users' own sync logs are written at home only: a contact notice for
a user homed elsewhere travels in the replication log and is appended there.

Entries (`wechat_core.replication.log.replicate`, written in the transaction of
the change): `user`, `friend_request`, `friendship`, `friendship_deleted`,
`block`, `block_deleted`, `contact_notices`. Applying one is an upsert by id (or
by the owner/friend, blocker/blocked pair), so it is idempotent even without the
replay positions.

Blocks travel so that they hold where the blocked user acts: their requests and
1:1 messages are checked at their own home, against its copy (and a send
forwarded to a chat mastered elsewhere is checked there again: `blocked_either_way`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Block, FriendRequest, FriendRequestStatus, Friendship, User
from wechat_core import datacenters
from wechat_core.models import Campus, DataCenter, EntryKind, SyncEntry
from wechat_core.replication.log import replay_handler_register, replicate
from wechat_core.sync.log import entries_append, sequences_ensure

USER_FIELDS = (
    "phone", "email", "password", "wechat_id", "nickname", "region", "signature",
    "discoverable_by_phone", "discoverable_by_wechat_id", "discoverable_by_email",
    "home_datacenter_id",
    "home_campus_id", "is_active",
)  # fmt: skip


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def local_user_ids(user_ids: Iterable[int]) -> set[int]:
    """The users among these homed in this data centre (all of them with one)."""
    ids = set(user_ids)
    if not datacenters.enabled() or not ids:
        return ids
    return set(
        User.objects.filter(pk__in=ids, home_datacenter_id=datacenters.here()).values_list(
            "pk", flat=True
        )
    )


def user_replicate(user: User) -> None:
    payload: dict[str, Any] = {field: getattr(user, field) for field in USER_FIELDS}
    payload["id"] = user.pk
    payload["avatar"] = user.avatar.name or ""
    payload["date_joined"] = _when(user.date_joined)
    replicate("user", payload)


def friend_request_replicate(request: FriendRequest) -> None:
    replicate(
        "friend_request",
        {
            "id": request.pk,
            "from_user_id": request.from_user_id,
            "to_user_id": request.to_user_id,
            "greeting": request.greeting,
            "status": request.status,
            "created_at": _when(request.created_at),
            "expires_at": _when(request.expires_at),
            "responded_at": _when(request.responded_at),
        },
    )


def friendship_replicate(friendship: Friendship) -> None:
    replicate(
        "friendship",
        {
            "id": friendship.pk,
            "owner_id": friendship.owner_id,
            "friend_id": friendship.friend_id,
            "remark": friendship.remark,
            "created_at": _when(friendship.created_at),
        },
    )


def friendship_deleted_replicate(owner_id: int, friend_id: int) -> None:
    replicate("friendship_deleted", {"owner_id": owner_id, "friend_id": friend_id})


def block_replicate(block: Block) -> None:
    replicate(
        "block",
        {
            "id": block.pk,
            "blocker_id": block.blocker_id,
            "blocked_id": block.blocked_id,
            "created_at": _when(block.created_at),
        },
    )


def block_deleted_replicate(blocker_id: int, blocked_id: int) -> None:
    replicate("block_deleted", {"blocker_id": blocker_id, "blocked_id": blocked_id})


def blocked_either_way(user_id: int, other_id: int) -> bool:
    """Whether either of the two blocks the other, by this data centre's rows. For
    the replay, which has no ticket to ask accounts.selectors.contact_relation with."""
    return Block.objects.filter(
        Q(blocker_id=user_id, blocked_id=other_id) | Q(blocker_id=other_id, blocked_id=user_id)
    ).exists()


def contact_notices_split(
    notices: list[tuple[int, str, dict[str, int]]],
) -> list[tuple[int, str, dict[str, int]]]:
    """The notices for users homed here; those for users homed elsewhere go into the
    replication log, to be appended at their home."""
    local = local_user_ids(user_id for user_id, _, _ in notices)
    remote = [notice for notice in notices if notice[0] not in local]
    if remote:
        replicate("contact_notices", {"notices": [list(notice) for notice in remote]})
    return [notice for notice in notices if notice[0] in local]


# --- Seeding a peer -----------------------------------------------------------------------

SEED_CHUNK = 1000  # rows per transaction


def replication_seed() -> dict[str, int]:
    """Write into the replication log what this data centre masters and existed
    before replication carried it: the users homed here, their side of each
    friendship, their blocks and the friend requests they sent that are still
    pending. Run once data centres are switched on (or a peer is added): without
    it a peer learns of an older row only when it changes again (a block made
    before replication stays unknown to the blocked user's home, which would let
    their requests and 1:1 messages through). Replaying an entry is an upsert, so
    rows already there (or seeded twice) change nothing. Returns the counts."""
    if not datacenters.enabled():
        return {}
    here = datacenters.here()
    sources: list[tuple[str, Any, Callable[[Any], None]]] = [
        ("user", User.objects.filter(home_datacenter_id=here), user_replicate),
        (
            "friendship",
            Friendship.objects.filter(owner__home_datacenter_id=here),
            friendship_replicate,
        ),
        ("block", Block.objects.filter(blocker__home_datacenter_id=here), block_replicate),
        (
            "friend_request",
            FriendRequest.objects.filter(
                from_user__home_datacenter_id=here, status=FriendRequestStatus.PENDING
            ),
            friend_request_replicate,
        ),
    ]
    counts: dict[str, int] = {}
    # Users first: the other entries name them (a peer parks an entry whose user it
    # has not got).
    for kind, rows, replicate_one in sources:
        counts[kind] = 0
        last = 0
        while True:
            with transaction.atomic():
                chunk = list(rows.filter(pk__gt=last).order_by("pk")[:SEED_CHUNK])
                for row in chunk:
                    replicate_one(row)
            if not chunk:
                break
            counts[kind] += len(chunk)
            last = chunk[-1].pk
    return counts


# --- Replay -------------------------------------------------------------------------------


def _topology_ensure(datacenter: str, campus: str) -> None:
    dc, _ = DataCenter.objects.get_or_create(code=datacenter, defaults={"name": datacenter.upper()})
    Campus.objects.get_or_create(code=campus, defaults={"datacenter": dc, "name": campus.upper()})


def _user_apply(payload: dict[str, Any], origin: str) -> None:
    _topology_ensure(payload["home_datacenter_id"], payload["home_campus_id"])
    defaults = {field: payload[field] for field in USER_FIELDS}
    defaults["avatar"] = payload.get("avatar", "")
    defaults["date_joined"] = _parse_when(payload.get("date_joined"))
    User.objects.update_or_create(pk=payload["id"], defaults=defaults)


def _friend_request_apply(payload: dict[str, Any], origin: str) -> None:
    if (
        payload["status"] == FriendRequestStatus.EXPIRED
        and FriendRequest.objects.filter(pk=payload["id"])
        .exclude(status=FriendRequestStatus.PENDING)
        .exists()
    ):
        # Its master expired it while it was answered here, in time (accepted, or
        # declined): the answer stands, and reaches the master in turn.
        return
    FriendRequest.objects.update_or_create(
        pk=payload["id"],
        defaults={
            "from_user_id": payload["from_user_id"],
            "to_user_id": payload["to_user_id"],
            "greeting": payload["greeting"],
            "status": payload["status"],
            "created_at": _parse_when(payload["created_at"]),
            "expires_at": _parse_when(payload["expires_at"]),
            "responded_at": _parse_when(payload["responded_at"]),
        },
    )


def _friendship_apply(payload: dict[str, Any], origin: str) -> None:
    pair = Q(owner_id=payload["owner_id"], friend_id=payload["friend_id"])
    updated = Friendship.objects.filter(pair).update(remark=payload["remark"])
    if not updated:
        Friendship.objects.create(
            id=payload["id"],
            owner_id=payload["owner_id"],
            friend_id=payload["friend_id"],
            remark=payload["remark"],
            # the origin's time (absent from entries written before it travelled)
            created_at=_parse_when(payload.get("created_at")) or timezone.now(),
        )


def _friendship_deleted_apply(payload: dict[str, Any], origin: str) -> None:
    Friendship.objects.filter(owner_id=payload["owner_id"], friend_id=payload["friend_id"]).delete()


def _block_apply(payload: dict[str, Any], origin: str) -> None:
    block, created = Block.objects.get_or_create(
        blocker_id=payload["blocker_id"], blocked_id=payload["blocked_id"],
        defaults={"id": payload["id"]},
    )  # fmt: skip
    when = _parse_when(payload.get("created_at"))
    if created and when is not None:
        # the origin's time (created_at is set to now on insert, whatever is given)
        Block.objects.filter(pk=block.pk).update(created_at=when)


def _block_deleted_apply(payload: dict[str, Any], origin: str) -> None:
    Block.objects.filter(
        blocker_id=payload["blocker_id"], blocked_id=payload["blocked_id"]
    ).delete()


def _contact_notices_apply(payload: dict[str, Any], origin: str) -> None:
    notices = [(int(user_id), str(event), dict(fields)) for user_id, event, fields in
               payload["notices"]]  # fmt: skip
    local = local_user_ids(user_id for user_id, _, _ in notices)
    mine = [notice for notice in notices if notice[0] in local]
    if not mine:
        return
    sequences_ensure(sorted({user_id for user_id, _, _ in mine}))
    entries_append(
        SyncEntry(user_id=user_id, kind=EntryKind.CONTACT, payload={"event": event, **fields})
        for user_id, event, fields in mine
    )


def _users(*fields: str) -> Callable[[dict[str, Any]], list[str]]:
    """Ordering keys: the users an entry names in these fields."""

    def keys(payload: dict[str, Any]) -> list[str]:
        return [f"user:{int(payload[field])}" for field in fields]

    return keys


def _notice_keys(payload: dict[str, Any]) -> list[str]:
    return [f"user:{int(user_id)}" for user_id, _, _ in payload["notices"]]


def replay_handlers_register() -> None:
    # Ordered per user: an entry waits behind a parked one touching one of its users
    # (a user's first entry, which brings the user, above all), not behind others'.
    replay_handler_register("user", _user_apply, keys=_users("id"))
    replay_handler_register(
        "friend_request", _friend_request_apply, keys=_users("from_user_id", "to_user_id")
    )
    replay_handler_register("friendship", _friendship_apply, keys=_users("owner_id", "friend_id"))
    replay_handler_register(
        "friendship_deleted", _friendship_deleted_apply, keys=_users("owner_id", "friend_id")
    )
    # A block and a later unblock of a pair are written at the blocker's home (one
    # origin) and share their keys: the later one never overtakes the earlier.
    replay_handler_register("block", _block_apply, keys=_users("blocker_id", "blocked_id"))
    replay_handler_register(
        "block_deleted", _block_deleted_apply, keys=_users("blocker_id", "blocked_id")
    )
    replay_handler_register("contact_notices", _contact_notices_apply, keys=_notice_keys)
