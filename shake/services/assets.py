"""Sponsor assets pushed ahead of the show (seed 004: logos and backgrounds reach
clients before the gala, so the peak fetches none of them).

An operator imports each sponsor's logo or background image (from a URL or a file);
it is stored under MEDIA by its SHA-256 and served from our origin at a URL with the
hash in it, cacheable for ever. Each import bumps the activity's manifest version.
Clients fetch the manifest's assets in idle time, check each hash, and report which
they hold; operators see the share of reporting clients that hold the whole current
manifest (`shake_assets_complete_ratio`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from shake.exceptions import AssetInvalid, PlanInvalid
from shake.models import Activity, AssetRole, Sponsor, SponsorAsset
from wechat_core.cacheclient import redis_connect
from wechat_core.metrics import gauge

logger = logging.getLogger(__name__)

# Logos and backgrounds only: small enough that a phone fetches all of them in idle time.
ASSET_MAX_BYTES = 1024 * 1024
ASSET_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
# A client counts as online while its last report is this recent; the web client
# reports when it opens the shake page and every REPORT_SECONDS while it shows.
ONLINE_SECONDS = 180
REPORT_SECONDS = 60
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
            content_type = ASSET_TYPES.get(image.format or "")
            image.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise AssetInvalid("The asset is not a readable image.") from error
    if content_type is None:
        raise AssetInvalid(f"Assets must be one of {', '.join(sorted(ASSET_TYPES))}.")
    return content_type


def asset_store(*, sponsor_id: int, role: str, content: bytes, source: str = "") -> SponsorAsset:
    """Store a sponsor's logo or background (replacing the one it had) and bump its
    activity's manifest version."""
    if role not in AssetRole.values:
        raise AssetInvalid("An asset's role is logo or background.")
    if not content or len(content) > ASSET_MAX_BYTES:
        raise AssetInvalid(
            f"An asset has 1 to {ASSET_MAX_BYTES} bytes.", details={"limit": ASSET_MAX_BYTES}
        )
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
                    if len(content) > ASSET_MAX_BYTES:
                        break
        except httpx.HTTPError as error:
            raise AssetInvalid(f"Could not fetch {source}: {error}") from error
    else:
        path = Path(source)
        if not path.is_file():
            raise AssetInvalid(f"No such file: {source}")
        with path.open("rb") as handle:
            content = handle.read(ASSET_MAX_BYTES + 1)
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
    hashes). A report of an older version is answered, and counted as not complete."""
    ticket_require(ticket, user_id=user_id)
    missing = tuple(sorted(manifest.hashes - set(held)))
    complete = not missing and version == manifest.version
    counted = False
    if settings.REDIS_URL:
        online_key, complete_key = _keys(manifest.activity_id, manifest.version)
        now = time.time()
        try:
            pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
            pipe.zadd(online_key, {str(user_id): now})
            if complete:
                pipe.zadd(complete_key, {str(user_id): now})
            else:
                pipe.zrem(complete_key, str(user_id))
            for key in (online_key, complete_key):
                pipe.zremrangebyscore(key, "-inf", now - ONLINE_SECONDS)
                pipe.expire(key, ONLINE_SECONDS * 2)
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
    low = time.time() - ONLINE_SECONDS
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
