"""Uploads: images and files, checked against size and type limits before they are stored."""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.exceptions import InvalidContent
from messaging.models import Attachment, AttachmentKind
from wechat_core.errors import PayloadTooLarge

IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def _image_type(upload: UploadedFile) -> str:
    try:
        with Image.open(upload) as image:
            content_type = IMAGE_TYPES.get(image.format or "")
            if content_type is None:
                raise InvalidContent(f"Images must be one of {', '.join(sorted(IMAGE_TYPES))}.")
            if image.width * image.height > settings.MESSAGING_IMAGE_MAX_PIXELS:
                raise InvalidContent("The image has too many pixels.")
            image.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise InvalidContent("The file is not a readable image.") from error
    upload.seek(0)
    return content_type


def _file_type(upload: UploadedFile, name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or upload.content_type or "application/octet-stream"
    if guessed not in settings.MESSAGING_FILE_TYPES:
        raise InvalidContent(
            f"Files of type {guessed} are not accepted.",
            details={"accepted": sorted(settings.MESSAGING_FILE_TYPES)},
        )
    return guessed


def attachment_upload(
    *, ticket: VerifiedTicket, user_id: int, kind: str, upload: UploadedFile
) -> Attachment:
    """Store an upload for later sending; only its owner can read it until it is sent."""
    ticket_require(ticket, user_id=user_id)
    if kind not in AttachmentKind.values:
        raise InvalidContent("kind must be image or file.")
    limit = (
        settings.MESSAGING_IMAGE_MAX_BYTES
        if kind == AttachmentKind.IMAGE
        else settings.MESSAGING_FILE_MAX_BYTES
    )
    if upload.size is None or upload.size > limit:
        raise PayloadTooLarge(f"A {kind} may be at most {limit} bytes.", details={"limit": limit})
    name = (upload.name or "upload").rsplit("/", 1)[-1][:200]
    content_type = _image_type(upload) if kind == AttachmentKind.IMAGE else _file_type(upload, name)
    attachment = Attachment(
        owner_id=user_id, kind=kind, name=name, content_type=content_type, size=upload.size
    )
    attachment.file.save(attachment.pk.hex, upload, save=False)
    attachment.save()
    return attachment
