"""Uploads: images and files, checked against size and type limits before they are
stored, and gone once the message that carried them is recalled."""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.exceptions import InvalidContent
from messaging.models import Attachment, AttachmentKind, Message
from wechat_core.errors import PayloadTooLarge
from wechat_core.transactions import after_commit

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


def attachment_release_recalled(*, message: Message) -> None:
    """A recalled message's image or file is served to nobody, the sender
    included (as in WeChat, a recall takes the content back from everyone):
    unless another message of the conversation that was not recalled carries the
    same upload, the attachment is deleted, and its file after commit. Call in
    the recall's transaction."""
    attachment_id = (message.body or {}).get("attachment")
    if not attachment_id:
        return
    # Locked first, as sending locks it: a concurrent send of the same upload
    # either commits before the check below sees it, or finds it gone.
    attachment = Attachment.objects.select_for_update(no_key=True).filter(pk=attachment_id).first()
    if attachment is None:
        return
    still_shown = (
        Message.objects.filter(
            conversation_id=message.conversation_id,
            recalled_at__isnull=True,
            body__attachment=attachment_id,
        )
        .exclude(pk=message.pk)
        .exists()
    )
    if still_shown:
        return
    storage, name = attachment.file.storage, attachment.file.name
    attachment.delete()
    after_commit(lambda: storage.delete(name), name="file_delete")
