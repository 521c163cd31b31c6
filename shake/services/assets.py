"""Sponsor assets pushed ahead of the show (seed 004: logos and backgrounds reach
clients before the gala, so the peak fetches none of them).

An operator imports each sponsor's logo or background image (from a URL or a file);
it is stored under MEDIA by its SHA-256 and served from our origin at a URL with the
hash in it, cacheable for ever. Each import bumps the activity's manifest version.
Clients fetch the manifest's assets in idle time, check each hash, and report which
they hold; operators see the share of reporting clients that hold the whole current
manifest (`shake_assets_complete_ratio`). Online clients learn of a new version from a
`shake_assets` entry in their sync log, pushed by a Celery task after the import,
batch by batch with a durable cursor (`AssetPush`): a push whose worker died is
resumed by the beat from where it stopped, and nobody gets a version's entry twice.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Protocol

import httpx
import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from accounts.selectors import device_profiles_signed_in
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from shake.exceptions import AssetInvalid, AssetUnknown, PlanInvalid
from shake.models import Activity, AssetPush, AssetRole, Sponsor, SponsorAsset
from wechat_core.cacheclient import redis_connect
from wechat_core.metrics import gauge
from wechat_core.sync.log import entries_append_payloads
from wechat_core.sync.models import EntryKind
from wechat_core.transactions import enqueue_on_commit, task_enqueue

logger = logging.getLogger(__name__)

# The image formats an asset may have (Pillow's names) and their content types; which of
# them are accepted, and how large an asset may be, are settings (SHAKE_ASSET_TYPES,
# SHAKE_ASSET_MAX_BYTES): logos and backgrounds a phone fetches in idle time.
ASSET_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
IMPORT_TIMEOUT_SECONDS = 10.0

COMPLETE_RATIO = gauge(
    "shake_assets_complete_ratio",
    "Share of online shake clients holding every asset of the activity's current manifest.",
    ["activity"],
    mode="mostrecent",
)
ONLINE_CLIENTS = gauge(
    "shake_assets_online_clients",
    "Shake clients that reported their assets recently (the ratio's denominator).",
    ["activity"],
    mode="mostrecent",
)


@dataclass(frozen=True, slots=True)
class AssetEntry:
    sha256: str
    size: int
    content_type: str
    sponsor_id: int
    role: str

    @property
    def url(self) -> str:
        return asset_url(self.sha256)


@dataclass(frozen=True, slots=True)
class Manifest:
    activity_id: int
    version: int
    entries: tuple[AssetEntry, ...]

    @property
    def hashes(self) -> frozenset[str]:
        return frozenset(entry.sha256 for entry in self.entries)


@dataclass(frozen=True, slots=True)
class HeldReport:
    complete: bool
    missing: tuple[str, ...]
    counted: bool  # False when Redis could not be reached: the answer stands, uncounted


def asset_url(sha256: str) -> str:
    return f"/api/shake/assets/{sha256}"


def asset_path(sha256: str) -> str:
    return f"shake/assets/{sha256}"


def _image_type(content: bytes) -> str:
    try:
        with Image.open(io.BytesIO(content)) as image:
            allowed = settings.SHAKE_ASSET_TYPES
            content_type = ASSET_TYPES.get(image.format or "") if image.format in allowed else None
            image.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise AssetInvalid("The asset is not a readable image.") from error
    if content_type is None:
        raise AssetInvalid(f"Assets must be one of {', '.join(settings.SHAKE_ASSET_TYPES)}.")
    return content_type


def asset_store(*, sponsor_id: int, role: str, content: bytes, source: str = "") -> SponsorAsset:
    """Store a sponsor's logo or background (replacing the one it had) and bump its
    activity's manifest version."""
    if role not in AssetRole.values:
        raise AssetInvalid("An asset's role is logo or background.")
    limit = settings.SHAKE_ASSET_MAX_BYTES
    if not content or len(content) > limit:
        raise AssetInvalid(f"An asset has 1 to {limit} bytes.", details={"limit": limit})
    content_type = _image_type(content)
    digest = hashlib.sha256(content).hexdigest()
    with transaction.atomic():
        sponsor = Sponsor.objects.filter(pk=sponsor_id).first()
        if sponsor is None:
            raise PlanInvalid("No such sponsor.")
        activity = Activity.objects.select_for_update().get(pk=sponsor.activity_id)
        name = asset_path(digest)
        # Content-addressed: a file already there under its hash is this very content.
        if not default_storage.exists(name):
            saved = default_storage.save(name, ContentFile(content))
            if saved != name:  # a race with another import of the same bytes
                default_storage.delete(saved)
        asset, _ = SponsorAsset.objects.update_or_create(
            sponsor=sponsor,
            role=role,
            defaults={
                "sha256": digest,
                "size": len(content),
                "content_type": content_type,
                "file": name,
                "source": source[:500],
            },
        )
        activity.assets_version += 1
        activity.save(update_fields=["assets_version"])
        # If the broker is down, clients still learn the version from the schedule answer
        # and their reports' answers; the push only tells them sooner.
        enqueue_on_commit(
            "shake.tasks.push_assets",
            activity.pk,
            activity.assets_version,
            name="shake_assets_push",
        )
    return asset


def asset_import(*, sponsor_id: int, role: str, source: str) -> SponsorAsset:
    """An operator's import: `source` is an http(s) URL or a local file's path."""
    if source.startswith(("http://", "https://")):
        try:
            with httpx.stream("GET", source, timeout=IMPORT_TIMEOUT_SECONDS) as response:
                response.raise_for_status()
                content = b""
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > settings.SHAKE_ASSET_MAX_BYTES:
                        break
        except httpx.HTTPError as error:
            raise AssetInvalid(f"Could not fetch {source}: {error}") from error
    else:
        path = Path(source)
        if not path.is_file():
            raise AssetInvalid(f"No such file: {source}")
        with path.open("rb") as handle:
            content = handle.read(settings.SHAKE_ASSET_MAX_BYTES + 1)
    return asset_store(sponsor_id=sponsor_id, role=role, content=content, source=source)


class Readable(Protocol):
    """What an upload is read through (Django's UploadedFile, or an open file)."""

    def read(self, size: int = -1, /) -> bytes: ...


def asset_upload(
    *, sponsor_id: int, role: str, stream: Readable, name: str, operator: str
) -> SponsorAsset:
    """An operator's upload from the activity's page: read at most the size limit (and
    a byte more, to tell a larger file), then stored as any import is: decoded to check
    its type, hashed here (whatever the browser claimed), its source recorded as the
    file's name and who uploaded it."""
    content = stream.read(settings.SHAKE_ASSET_MAX_BYTES + 1)
    source = f"upload:{Path(name).name[:200]} by {operator}"
    return asset_store(sponsor_id=sponsor_id, role=role, content=content, source=source)


# --- What clients hold ----------------------------------------------------------------


@cache
def _redis(url: str) -> redis.Redis:
    return redis_connect(url, timeout=1)


def _keys(activity_id: int, version: int) -> tuple[str, str]:
    base = f"{settings.SHAKE_REGISTRY}:assets:{activity_id}"
    return f"{base}:online", f"{base}:complete:{version}"


def assets_report(
    *, ticket: VerifiedTicket, user_id: int, manifest: Manifest, version: int, held: list[str]
) -> HeldReport:
    """Record which of the manifest's assets this user's client holds (checked by their
    hashes). A report of an older version is answered, and counted as not complete;
    one about an activity without assets is refused (nothing to hold)."""
    ticket_require(ticket, user_id=user_id)
    if not manifest.entries:
        raise AssetUnknown("This activity has no assets.")
    missing = tuple(sorted(manifest.hashes - set(held)))
    complete = not missing and version == manifest.version
    counted = False
    if settings.REDIS_URL:
        online_key, complete_key = _keys(manifest.activity_id, manifest.version)
        now = time.time()
        online_seconds = settings.SHAKE_ASSETS_ONLINE_SECONDS
        try:
            pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
            pipe.zadd(online_key, {str(user_id): now})
            if complete:
                pipe.zadd(complete_key, {str(user_id): now})
            else:
                pipe.zrem(complete_key, str(user_id))
            for key in (online_key, complete_key):
                pipe.zremrangebyscore(key, "-inf", now - online_seconds)
                pipe.expire(key, online_seconds * 2)
            pipe.zcard(online_key)
            pipe.zcard(complete_key)
            *_, online, holding = pipe.execute()
            counted = True
            _gauges_set(manifest.activity_id, int(online), int(holding))
        except redis.RedisError:
            logger.warning("shake asset report not counted: Redis unreachable")
    return HeldReport(complete=complete, missing=missing, counted=counted)


def assets_counts(manifest: Manifest) -> tuple[int, int]:
    """(online clients, those holding the whole manifest), as the gauges show them;
    (0, 0) when Redis cannot be read."""
    if not settings.REDIS_URL:
        return 0, 0
    online_key, complete_key = _keys(manifest.activity_id, manifest.version)
    low = time.time() - settings.SHAKE_ASSETS_ONLINE_SECONDS
    try:
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
        pipe.zcount(online_key, low, "+inf")
        pipe.zcount(complete_key, low, "+inf")
        online, holding = pipe.execute()
    except redis.RedisError:
        return 0, 0
    _gauges_set(manifest.activity_id, int(online), int(holding))
    return int(online), int(holding)


def _gauges_set(activity_id: int, online: int, holding: int) -> None:
    label = str(activity_id)
    ONLINE_CLIENTS.set(label, value=online)
    COMPLETE_RATIO.set(label, value=holding / online if online else 0.0)


# --- Telling clients a manifest changed -------------------------------------------------


def _push_batch(push_id: int) -> bool:
    """Give the next batch of users the entry; False once the push is finished (or
    superseded, or finished by another run). The cursor moves in the batch's own
    transaction, under the push's row lock: two runs of one push share the work, and a
    run killed mid-batch wrote nothing of it."""
    with transaction.atomic():
        push = AssetPush.objects.select_for_update().filter(pk=push_id).first()
        if push is None or push.finished_at is not None:
            return False
        now = timezone.now()
        current = Activity.objects.filter(pk=push.activity_id).values_list(
            "assets_version", flat=True
        )
        if current.first() != push.version:  # a newer version's push tells everyone
            push.finished_at, push.superseded, push.updated_at = now, True, now
            push.save(update_fields=["finished_at", "superseded", "updated_at"])
            return False
        profiles = device_profiles_signed_in(
            after_user_id=push.after_user, users=settings.SHAKE_ASSETS_PUSH_BATCH
        )
        if not profiles:
            push.finished_at, push.updated_at = now, now
            push.save(update_fields=["finished_at", "updated_at"])
            return False
        users = sorted({profile.user_id for profile in profiles})
        payload = {"activity": push.activity_id, "version": push.version}
        entries_append_payloads(
            kind=EntryKind.SHAKE_ASSETS, payloads={user: dict(payload) for user in users}
        )
        push.after_user, push.pushed, push.updated_at = users[-1], push.pushed + len(users), now
        push.save(update_fields=["after_user", "pushed", "updated_at"])
        pushed = len(users)
    _pace(pushed)
    return True


def _pace(users: int) -> None:
    """Spread the push at SHAKE_ASSETS_PUSH_USERS_PER_SECOND (0: as fast as it goes), so
    that the clients it tells do not all come for the assets in the same second."""
    rate = settings.SHAKE_ASSETS_PUSH_USERS_PER_SECOND
    if rate:
        time.sleep(users / rate)


def assets_push_run(*, activity_id: int, version: int) -> int:
    """Write a `shake_assets` entry ({activity, version}) into the sync log of every user
    with a signed-in device (a live ticket), a batch of users per transaction, so that
    online clients fetch the new manifest in idle time. Activities have no audience of
    their own: the show is for everyone signed in, as a client-visible flag's push is.

    Each user gets the entry of a version once: the push's progress (`AssetPush`) is
    durable, so a second run of the same version continues where the first stopped (a
    worker killed mid-push) or writes nothing (a late duplicate). A version already
    superseded is not pushed (the newer one's push tells everyone). Returns the number
    of users given the entry by this run."""
    current = Activity.objects.filter(pk=activity_id).values_list("assets_version", flat=True)
    if current.first() != version:
        # Superseded: an interrupted push of it is closed, so the beat stops resuming it.
        now = timezone.now()
        AssetPush.objects.filter(
            activity_id=activity_id, version=version, finished_at__isnull=True
        ).update(finished_at=now, superseded=True, updated_at=now)
        return 0
    push, _ = AssetPush.objects.get_or_create(activity_id=activity_id, version=version)
    before = push.pushed
    # A paced push of many users outlasts a task's time limit: past half of it, this run
    # hands the rest to a fresh task (which continues from the cursor).
    deadline = time.monotonic() + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    while _push_batch(push.pk):
        if time.monotonic() > deadline:
            task_enqueue("shake.tasks.push_assets", activity_id, version)
            break
    push.refresh_from_db(fields=["pushed"])
    return push.pushed - before


def assets_pushes_resume(*, stale_seconds: int | None = None) -> list[tuple[int, int]]:
    """The beat's pass: run again every push unfinished and not moving for
    SHAKE_ASSETS_PUSH_STALE_SECONDS (its worker died, or its task was lost), from its
    cursor. Returns the (activity, version) pairs it enqueued."""
    stale = stale_seconds if stale_seconds is not None else settings.SHAKE_ASSETS_PUSH_STALE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=stale)
    stalled = list(
        AssetPush.objects.filter(finished_at__isnull=True, updated_at__lt=cutoff)
        .order_by("pk")
        .values_list("activity_id", "version")[:100]
    )
    for activity_id, version in stalled:
        # Touched so that the next pass does not enqueue it again while it runs.
        AssetPush.objects.filter(activity_id=activity_id, version=version).update(
            updated_at=timezone.now()
        )
        task_enqueue("shake.tasks.push_assets", activity_id, version)
    return stalled
