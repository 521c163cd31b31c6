"""The user's own profile: nickname, avatar, region, signature, discoverability."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.exceptions import InvalidImage, UserNotFound
from accounts.models import User
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from accounts.validators import clean_text
from wechat_core.errors import InvalidInput, PayloadTooLarge

AVATAR_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
AVATAR_SIDE = 640


def _locked_user(user_id: int) -> User:
    user = User.objects.select_for_update(no_key=True).filter(pk=user_id).first()
    if user is None:
        raise UserNotFound()
    return user


@transaction.atomic
def profile_update(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    nickname: str | None = None,
    region: str | None = None,
    signature: str | None = None,
    discoverable_by_phone: bool | None = None,
    discoverable_by_wechat_id: bool | None = None,
) -> User:
    """Change the given fields; None leaves a field as it is."""
    ticket_require(ticket, user_id=user_id)
    user = _locked_user(user_id)
    texts = {
        "nickname": (nickname, settings.NICKNAME_MAX_LENGTH, False),
        "region": (region, settings.REGION_MAX_LENGTH, True),
        "signature": (signature, settings.SIGNATURE_MAX_LENGTH, True),
    }
    changed: list[str] = []
    try:
        for field, (value, max_length, allow_empty) in texts.items():
            if value is not None:
                cleaned = clean_text(
                    value, field=field, max_length=max_length, allow_empty=allow_empty
                )
                setattr(user, field, cleaned)
                changed.append(field)
    except ValidationError as error:
        raise InvalidInput(
            f"Invalid input: {error.messages[0]}",
            details={"fields": error.message_dict},
        ) from error
    for field, flag in (
        ("discoverable_by_phone", discoverable_by_phone),
        ("discoverable_by_wechat_id", discoverable_by_wechat_id),
    ):
        if flag is not None:
            setattr(user, field, flag)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)
    return user


def _normalized_avatar(upload: UploadedFile) -> ContentFile[bytes]:
    """Decode, check and re-encode the image; re-encoding drops EXIF (location)."""
    if upload.size is None or upload.size > settings.AVATAR_MAX_BYTES:
        raise PayloadTooLarge(
            f"The avatar may be at most {settings.AVATAR_MAX_BYTES} bytes.",
            details={"limit": settings.AVATAR_MAX_BYTES},
        )
    try:
        with Image.open(upload) as probe:
            if probe.format not in AVATAR_FORMATS:
                raise InvalidImage(f"Use one of {', '.join(sorted(AVATAR_FORMATS))}.")
            if probe.width * probe.height > settings.AVATAR_MAX_PIXELS:
                raise InvalidImage("The image has too many pixels.")
            probe.verify()
        upload.seek(0)
        with Image.open(upload) as image:
            image.load()
            picture = ImageOps.exif_transpose(image)
            picture.thumbnail((AVATAR_SIDE, AVATAR_SIDE))
            has_alpha = picture.mode in ("RGBA", "LA", "P")
            buffer = io.BytesIO()
            if has_alpha:
                picture.convert("RGBA").save(buffer, format="PNG", optimize=True)
            else:
                picture.convert("RGB").save(buffer, format="JPEG", quality=88)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise InvalidImage("The file is not a readable image.") from error
    return ContentFile(buffer.getvalue(), name="avatar.png" if has_alpha else "avatar.jpg")


@transaction.atomic
def avatar_set(*, ticket: VerifiedTicket, user_id: int, upload: UploadedFile) -> User:
    ticket_require(ticket, user_id=user_id)
    content = _normalized_avatar(upload)
    user = _locked_user(user_id)
    old = user.avatar.name if user.avatar else ""
    user.avatar.save(content.name or "avatar.jpg", content, save=False)
    user.save(update_fields=["avatar"])
    if old:
        storage, name = user.avatar.storage, old
        transaction.on_commit(lambda: storage.delete(name))
    return user


@transaction.atomic
def avatar_clear(*, ticket: VerifiedTicket, user_id: int) -> User:
    ticket_require(ticket, user_id=user_id)
    user = _locked_user(user_id)
    if user.avatar:
        storage, name = user.avatar.storage, user.avatar.name
        user.avatar = ""
        user.save(update_fields=["avatar"])
        transaction.on_commit(lambda: storage.delete(name))
    return user
