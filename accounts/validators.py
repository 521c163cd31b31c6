"""Normalisation and validation of identifiers: phones, e-mails, WeChat IDs, versions."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

WECHAT_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{5,19}$")
CLIENT_VERSION_PATTERN = re.compile(r"^\d{1,4}\.\d{1,4}\.\d{1,4}(?:[-+][0-9A-Za-z.-]{1,16})?$")


def normalize_phone(raw: str) -> str:
    """E.164 form (+8613800000000); numbers without a country code use DEFAULT_PHONE_REGION."""
    try:
        number = phonenumbers.parse(raw, settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as error:
        raise ValidationError("Enter a valid phone number.", code="invalid_phone") from error
    if not phonenumbers.is_valid_number(number):
        raise ValidationError("Enter a valid phone number.", code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    validate_email(email)
    return email


def validate_wechat_id(raw: str) -> str:
    """6-20 characters, starting with a letter; letters, digits, '_' and '-'."""
    if not WECHAT_ID_PATTERN.fullmatch(raw):
        raise ValidationError(
            "A WeChat ID has 6-20 characters, starts with a letter and uses only "
            "letters, digits, '_' and '-'.",
            code="invalid_wechat_id",
        )
    if raw.lower() in settings.WECHAT_ID_RESERVED:
        raise ValidationError("This WeChat ID is reserved.", code="reserved_wechat_id")
    return raw


def validate_client_version(raw: str) -> None:
    if not CLIENT_VERSION_PATTERN.fullmatch(raw):
        raise ValidationError(
            "client_version must be a semantic version such as 8.0.50.", code="invalid_version"
        )


def looks_like_phone(query: str) -> bool:
    return bool(re.fullmatch(r"\+?[0-9 ()-]{5,24}", query.strip()))


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(value: str, *, field: str, max_length: int, allow_empty: bool = True) -> str:
    """Trim, refuse control characters and enforce a length limit (in characters)."""
    text = value.strip()
    if _CONTROL_CHARACTERS.search(text):
        raise ValidationError({field: "Control characters and line breaks are not allowed."})
    if not text and not allow_empty:
        raise ValidationError({field: "This field may not be blank."})
    if len(text) > max_length:
        raise ValidationError({field: f"At most {max_length} characters (got {len(text)})."})
    return text
