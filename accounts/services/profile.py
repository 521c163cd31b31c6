"""The user's own profile: nickname, avatar, region, signature, discoverability,
password."""

from __future__ import annotations

import io

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.exceptions import InvalidImage, UserNotFound, WrongPassword
from accounts.models import RevocationReason, User
from accounts.replication import user_replicate
from accounts.tickets import ticket_require, tickets_revoke_for_user
from accounts.types import VerifiedTicket
from accounts.validators import clean_text
from wechat_core.errors import InvalidInput, PayloadTooLarge
from wechat_core.transactions import after_commit

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
    discoverable_by_email: bool | None = None,
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
        ("discoverable_by_email", discoverable_by_email),
    ):
        if flag is not None:
            setattr(user, field, flag)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)
        user_replicate(user)
    return user


@transaction.atomic
def password_change(
    *, ticket: VerifiedTicket, user_id: int, old_password: str, new_password: str
) -> int:
    """Set a new password after checking the current one; every other device is
    logged out (their tickets revoked), this one stays. Returns how many tickets
    were revoked."""
    ticket_require(ticket, user_id=user_id)
    user = _locked_user(user_id)
    if not user.check_password(old_password):
        raise WrongPassword()
    try:
        validate_password(new_password, user=user)
    except ValidationError as error:
        raise InvalidInput(
            f"Invalid input: new_password: {error.messages[0]}",
            details={"fields": {"new_password": error.messages}},
        ) from error
    user.set_password(new_password)
    user.save(update_fields=["password"])
    user_replicate(user)  # the other data centres check the password to send the user home
    return tickets_revoke_for_user(
        user_id=user_id, reason=RevocationReason.PASSWORD_CHANGED, except_ticket=ticket.ticket_id
    )


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
    user_replicate(user)
    if old:
        storage, name = user.avatar.storage, old
        after_commit(lambda: storage.delete(name), name="file_delete")
    return user


@transaction.atomic
def avatar_clear(*, ticket: VerifiedTicket, user_id: int) -> User:
    ticket_require(ticket, user_id=user_id)
    user = _locked_user(user_id)
    if user.avatar:
        storage, name = user.avatar.storage, user.avatar.name
        user.avatar = ""
        user.save(update_fields=["avatar"])
        user_replicate(user)
        after_commit(lambda: storage.delete(name), name="file_delete")
    return user
