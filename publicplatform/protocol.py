"""The WeChat official-account wire format, without a database: signatures, safe-mode
AES, the XML we push and the lenient parser of developers' replies.

Written from the protocol reference (../shared/reference/official-account-protocol.md,
§1-§3) with the `cryptography` library; wechatpy and WeRoBot are only the tests'
counterparts, never a dependency of the product.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import time
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as SafeElementTree

TOKEN_RE = re.compile(r"^[A-Za-z0-9]{3,32}$")
AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")
_BLOCK = 32  # PKCS#7 to 32 bytes, not AES's 16 (reference §2.3)


class ProtocolError(ValueError):
    """A reply or envelope that breaks the protocol; the message says how."""


def sign(*parts: str) -> str:
    """SHA-1 of the sorted parts joined, as lowercase hex (reference §1)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - the protocol's


def signed_string(*parts: str) -> str:
    """What `sign` hashes, for the webhook tester."""
    return "".join(sorted(parts))


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def aes_key(encoding_aes_key: str) -> bytes:
    if not AES_KEY_RE.fullmatch(encoding_aes_key):
        raise ProtocolError("The EncodingAESKey is 43 letters and digits.")
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise ProtocolError("The EncodingAESKey does not decode to 32 bytes.")
    return key


def new_encoding_aes_key() -> str:
    """43 characters of base64 (no '+' or '/') that decode to 32 bytes."""
    while True:
        candidate = base64.b64encode(os.urandom(32)).decode()[:43]
        if AES_KEY_RE.fullmatch(candidate):
            return candidate


def encrypt(encoding_aes_key: str, appid: str, plaintext: str) -> str:
    key = aes_key(encoding_aes_key)
    body = plaintext.encode()
    raw = os.urandom(16) + struct.pack(">I", len(body)) + body + appid.encode()
    pad = _BLOCK - len(raw) % _BLOCK
    raw += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode()


def decrypt(encoding_aes_key: str, appid: str, encrypted: str) -> str:
    key = aes_key(encoding_aes_key)
    try:
        data = base64.b64decode(encrypted, validate=True)
    except ValueError as error:
        raise ProtocolError("Encrypt is not base64.") from error
    if not data or len(data) % 16:
        raise ProtocolError("Encrypt is not whole AES blocks.")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = decryptor.update(data) + decryptor.finalize()
    pad = raw[-1]
    if not 1 <= pad <= _BLOCK or len(raw) < 20 + pad:
        raise ProtocolError("Encrypt has bad padding (wrong EncodingAESKey?).")
    raw = raw[:-pad]
    length = struct.unpack(">I", raw[16:20])[0]
    if 20 + length > len(raw):
        raise ProtocolError("Encrypt has a bad length (wrong EncodingAESKey?).")
    if raw[20 + length :] != appid.encode():
        raise ProtocolError("The decrypted appid is not this account's.")
    try:
        return raw[20 : 20 + length].decode()
    except UnicodeDecodeError as error:
        raise ProtocolError("The decrypted message is not UTF-8.") from error


def nonce() -> str:
    return str(int.from_bytes(os.urandom(4), "big"))


def timestamp() -> str:
    return str(int(time.time()))


# --- The XML we push (reference §2.2) ---------------------------------------------------


# Characters XML 1.0 cannot carry at all, not even in CDATA: one of them in a user's
# text would make every SDK's parser refuse the push (and the user get the notice).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside one CDATA section: split it across two.
    value = _NOT_XML.sub("", value)
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def push_xml(fields: list[tuple[str, str | int]]) -> str:
    """`<xml>` with strings in CDATA and integers bare, in the order given."""
    parts = []
    for name, value in fields:
        text = str(value) if isinstance(value, int) else _cdata(value)
        parts.append(f"<{name}>{text}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def encrypted_envelope(original_id: str, encrypted: str) -> str:
    return push_xml([("ToUserName", original_id), ("Encrypt", encrypted)])


# --- Developers' replies (reference §3.1) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    description: str
    pic_url: str
    url: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A passive reply; `msg_type` None means "no reply" (empty body or `success`)."""

    msg_type: str | None
    to_user: str = ""
    from_user: str = ""
    content: str = ""
    media_id: str = ""
    title: str = ""
    description: str = ""
    music_url: str = ""
    articles: tuple[Article, ...] = field(default=())


NO_REPLY = Reply(msg_type=None)
REPLY_TYPES = {"text", "image", "voice", "video", "music", "news", "transfer_customer_service"}


def _clean(body: bytes) -> str:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ProtocolError("The reply is not UTF-8.") from error
    return text.strip()


def _xml(text: str) -> Element:
    try:
        root: Element = SafeElementTree.fromstring(text)
    except Exception as error:  # defusedxml raises several kinds; all mean "not our XML"
        raise ProtocolError(f"The reply is not XML ({type(error).__name__}).") from error
    if root.tag != "xml":
        raise ProtocolError(f"The reply's root element is <{root.tag}>, not <xml>.")
    return root


def _text(node: Element | None, name: str) -> str:
    child = node.find(name) if node is not None else None
    return (child.text or "").strip() if child is not None else ""


def _articles(root: Element, limit: int) -> tuple[Article, ...]:
    items = root.findall("./Articles/item")
    if not 1 <= len(items) <= limit:
        raise ProtocolError(f"A news reply has 1-{limit} articles, this one {len(items)}.")
    return tuple(
        Article(_text(i, "Title"), _text(i, "Description"), _text(i, "PicUrl"), _text(i, "Url"))
        for i in items
    )


def reply_parse(root: Element, *, max_articles: int = 10) -> Reply:
    msg_type = _text(root, "MsgType")
    if msg_type not in REPLY_TYPES:
        raise ProtocolError(f"MsgType {msg_type!r} is not a reply type.")
    to_user, from_user = _text(root, "ToUserName"), _text(root, "FromUserName")
    if msg_type == "text":
        if root.find("Content") is None:
            raise ProtocolError("A text reply needs <Content>.")
        return Reply(
            "text", content=root.findtext("Content") or "", to_user=to_user, from_user=from_user
        )
    if msg_type in ("image", "voice", "video"):
        node = root.find(msg_type.capitalize())
        media_id = _text(node, "MediaId")
        if not media_id:
            raise ProtocolError(f"An {msg_type} reply needs a MediaId.")
        title, description = _text(node, "Title"), _text(node, "Description")
        return Reply(
            msg_type, to_user, from_user, media_id=media_id, title=title, description=description
        )
    if msg_type == "music":
        node = root.find("Music")
        return Reply(
            "music",
            title=_text(node, "Title"),
            description=_text(node, "Description"),
            music_url=_text(node, "MusicUrl") or _text(node, "HQMusicUrl"),
            to_user=to_user,
            from_user=from_user,
        )
    if msg_type == "news":
        return Reply(
            "news", articles=_articles(root, max_articles), to_user=to_user, from_user=from_user
        )
    return Reply(msg_type, to_user=to_user, from_user=from_user)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A developer's answer after decryption: the reply, and whether it came encrypted."""

    reply: Reply
    encrypted: bool


def response_decode(
    body: bytes, *, token: str, encoding_aes_key: str, appid: str, max_articles: int = 10
) -> Decoded:
    """Read a developer's answer: empty or `success` (also encrypted) is no reply; an
    <Encrypt> envelope is checked against its own TimeStamp/Nonce and decrypted."""
    text = _clean(body)
    if text in ("", "success"):
        return Decoded(NO_REPLY, encrypted=False)
    root = _xml(text)
    if root.find("Encrypt") is None:
        return Decoded(reply_parse(root, max_articles=max_articles), encrypted=False)
    if not encoding_aes_key:
        raise ProtocolError("The reply is encrypted but the account has no EncodingAESKey.")
    encrypted = _text(root, "Encrypt")
    given = _text(root, "MsgSignature")
    expected = sign(token, _text(root, "TimeStamp"), _text(root, "Nonce"), encrypted)
    if not given or not signature_matches(expected, given):
        raise ProtocolError("The reply's MsgSignature does not match its TimeStamp and Nonce.")
    inner = decrypt(encoding_aes_key, appid, encrypted).strip()
    if inner in ("", "success"):
        return Decoded(NO_REPLY, encrypted=True)
    return Decoded(reply_parse(_xml(inner), max_articles=max_articles), encrypted=True)
