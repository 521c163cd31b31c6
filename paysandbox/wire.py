"""WeChat Pay v2 messages as the provider reads and writes them: flat <xml> bodies,
signed MD5 (the default) or HMAC-SHA256 (sign_type=HMAC-SHA256) over the sorted
non-empty fields and the merchant key. Written apart from the product's own
client on purpose: the two meet only on the wire."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from xml.sax.saxutils import escape

from defusedxml import ElementTree

SIGN_TYPES = ("MD5", "HMAC-SHA256")


class BadMessage(ValueError):
    pass


def parse(body: bytes) -> dict[str, str]:
    if len(body) > 64 * 1024:
        raise BadMessage("message too large")
    try:
        root = ElementTree.fromstring(body)
    except Exception as error:  # defusedxml raises several kinds; all mean "unreadable"
        raise BadMessage("not XML") from error
    if root.tag != "xml":
        raise BadMessage("root is not <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


def render(fields: dict[str, str]) -> bytes:
    items = sorted(fields.items())
    parts = (f"<{name}><![CDATA[{value.replace(']]>', '')}]]></{name}>" for name, value in items)
    return ("<xml>" + "".join(parts) + "</xml>").encode()


def signature(fields: dict[str, str], key: str, sign_type: str) -> str:
    text = "&".join(f"{k}={v}" for k, v in sorted(fields.items()) if v and k != "sign")
    text += "&key=" + key
    if sign_type == "HMAC-SHA256":
        return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest().upper()
    return hashlib.md5(text.encode()).hexdigest().upper()  # noqa: S324 - the protocol's MD5


def verified(fields: dict[str, str], key: str) -> bool:
    sign_type = fields.get("sign_type") or "MD5"
    if sign_type not in SIGN_TYPES or not fields.get("sign"):
        return False
    expected = signature(fields, key, sign_type)
    return hmac.compare_digest(expected, fields["sign"].upper())


def signed(fields: dict[str, str], key: str, sign_type: str) -> bytes:
    complete = {**fields, "nonce_str": secrets.token_hex(16)}
    complete["sign"] = signature(complete, key, sign_type)
    return render(complete)


def html(text: object) -> str:
    return escape(str(text), {'"': "&quot;"})
