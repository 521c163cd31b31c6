"""The payment provider's wire format (WeChat Pay API v2), without a database.

Every message is a flat `<xml>` of fields, signed: the non-empty fields other than
`sign`, sorted by name, joined as `k1=v1&k2=v2…`, then `&key=<merchant key>`,
HMAC-SHA256 with the merchant key, as upper-case hex (`sign_type=HMAC-SHA256`).
We send and accept only HMAC-SHA256; the key never leaves this module's callers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException

SIGN_TYPE = "HMAC-SHA256"
MAX_BODY_BYTES = 64 * 1024
_NONCE_ALPHABET = string.ascii_letters + string.digits
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class WireError(ValueError):
    """A body that is not a readable provider message."""


def nonce_str() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(32))


def signed_string(fields: Mapping[str, str], key: str) -> str:
    parts = [f"{name}={fields[name]}" for name in sorted(fields) if name != "sign" and fields[name]]
    return "&".join([*parts, f"key={key}"])


def sign(fields: Mapping[str, str], key: str) -> str:
    digest = hmac.new(key.encode(), signed_string(fields, key).encode(), hashlib.sha256)
    return digest.hexdigest().upper()


def signature_valid(fields: Mapping[str, str], key: str) -> bool:
    given = fields.get("sign", "")
    return bool(given) and hmac.compare_digest(sign(fields, key).encode(), given.upper().encode())


def to_xml(fields: Mapping[str, str]) -> bytes:
    root = Element("xml")
    for name in sorted(fields):
        SubElement(root, name).text = fields[name]
    return bytes(tostring(root, encoding="utf-8", xml_declaration=False))


def signed_xml(fields: Mapping[str, str], key: str) -> bytes:
    """`fields` with a nonce, the sign type and the signature, as XML."""
    complete = {**fields, "nonce_str": nonce_str(), "sign_type": SIGN_TYPE}
    complete["sign"] = sign(complete, key)
    return to_xml(complete)


def parse(body: bytes) -> dict[str, str]:
    """A provider message's fields. Refuses DTDs and entities (defusedxml), bodies
    over MAX_BODY_BYTES, nesting, repeated or oddly named fields."""
    if len(body) > MAX_BODY_BYTES:
        raise WireError("The message is too large.")
    try:
        root = SafeElementTree.fromstring(body)
    except (SafeElementTree.ParseError, DefusedXmlException, ValueError) as error:
        raise WireError("The message is not well-formed XML.") from error
    if root.tag != "xml":
        raise WireError("The message's root element is not <xml>.")
    fields: dict[str, str] = {}
    for child in root:
        if len(child) or not _FIELD.match(child.tag) or child.tag in fields:
            raise WireError(f"Unexpected element <{child.tag}>.")
        fields[child.tag] = (child.text or "").strip()
    return fields


def answer_xml(*, ok: bool, message: str) -> bytes:
    """Our answer to a notification: SUCCESS stops the provider's retries."""
    return to_xml({"return_code": "SUCCESS" if ok else "FAIL", "return_msg": message})
