"""The wire format against the SDKs' own code: our signatures, safe-mode AES and
reply parsing interoperate with wechatpy's helpers and WeRoBot's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechatpy import create_reply, parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.messages import TextMessage
from wechatpy.utils import check_signature

from publicplatform import protocol

TOKEN = "testtoken123"
APPID = "wx0123456789abcdef"


@given(timestamp=st.integers(0, 2**32).map(str), nonce=st.integers(0, 2**32).map(str))
def test_sign__any_timestamp_and_nonce__is_accepted_by_wechatpy(timestamp: str, nonce: str) -> None:
    # when
    signature = protocol.sign(TOKEN, timestamp, nonce)
    # then: wechatpy raises on a mismatch; lowercase hex, sorted strings
    check_signature(TOKEN, signature, timestamp, nonce)
    assert signature == signature.lower()
    assert len(signature) == 40


@given(text=st.text(max_size=300))
def test_encrypt__any_text__decrypts_with_wechatpy_and_back(text: str) -> None:
    # given
    key = protocol.new_encoding_aes_key()
    # when: we encrypt, wechatpy decrypts; wechatpy encrypts, we decrypt
    ours = protocol.encrypt(key, APPID, text)
    theirs = PrpCrypto(protocol.aes_key(key)).encrypt(text, APPID)
    # then
    assert PrpCrypto(protocol.aes_key(key)).decrypt(ours, APPID) == text
    assert (
        protocol.decrypt(key, APPID, theirs.decode() if isinstance(theirs, bytes) else theirs)
        == text
    )


def test_decrypt__another_appid__is_refused() -> None:
    key = protocol.new_encoding_aes_key()
    encrypted = protocol.encrypt(key, APPID, "<xml/>")
    with pytest.raises(protocol.ProtocolError, match="appid"):
        protocol.decrypt(key, "wxffffffffffffffff", encrypted)


def test_response_decode__wechatpy_encrypted_reply__checks_its_own_signature_and_decrypts() -> None:
    # given: a push and wechatpy's encrypted reply to it, with its own nonce/timestamp
    key = protocol.new_encoding_aes_key()
    push = protocol.push_xml(
        [
            ("ToUserName", "gh_0123456789ab"),
            ("FromUserName", "o" + "a" * 27),
            ("CreateTime", 1700000000),
            ("MsgType", "text"),
            ("Content", "hi"),
            ("MsgId", 42),
        ]
    )
    reply = create_reply("echo: hi", parse_message(push)).render()
    envelope = WeChatCrypto(TOKEN, key, APPID).encrypt_message(reply, "98765", "1700000001")
    # when
    decoded = protocol.response_decode(
        envelope.encode(), token=TOKEN, encoding_aes_key=key, appid=APPID
    )
    # then
    assert decoded.encrypted
    assert (decoded.reply.msg_type, decoded.reply.content) == ("text", "echo: hi")
    # and: a tampered signature is refused
    with pytest.raises(protocol.ProtocolError, match="MsgSignature"):
        protocol.response_decode(
            envelope.replace("<MsgSignature><![CDATA[", "<MsgSignature><![CDATA[0").encode(),
            token=TOKEN,
            encoding_aes_key=key,
            appid=APPID,
        )


def test_push_xml__text_message__parses_in_wechatpy_as_the_same_message() -> None:
    xml = protocol.push_xml(
        [
            ("ToUserName", "gh_0123456789ab"),
            ("FromUserName", "o" + "b" * 27),
            ("CreateTime", 1700000000),
            ("MsgType", "text"),
            ("Content", "a ]]> b <c> & d 你好"),
            ("MsgId", 7),
        ]
    )
    message = parse_message(xml)
    assert isinstance(message, TextMessage)
    assert (message.content, message.id, message.target) == (
        "a ]]> b <c> & d 你好",
        7,
        "gh_0123456789ab",
    )


@given(text=st.text(max_size=200))
def test_push_xml__any_user_text__parses_in_both_sdks_as_that_text(text: str) -> None:
    # given: whatever a user typed, control characters included
    import werobot.parser

    xml = protocol.push_xml(
        [
            ("ToUserName", "gh_0123456789ab"),
            ("FromUserName", "o" + "c" * 27),
            ("CreateTime", 1700000000),
            ("MsgType", "text"),
            ("Content", text),
            ("MsgId", 9),
        ]
    )
    # when
    ours = parse_message(xml)
    theirs = werobot.parser.parse_user_msg(xml)
    # then: the text minus what XML cannot carry (XML turns CR into LF; wechatpy's
    # parser also strips surrounding whitespace)
    kept = "".join(c for c in text if c in "\t\n\r" or (ord(c) >= 0x20 and not
                   0xD800 <= ord(c) <= 0xDFFF and c not in "\ufffe\uffff"))  # fmt: skip
    kept = kept.replace("\r\n", "\n").replace("\r", "\n")
    assert (ours.content or "") == kept.strip()
    assert (theirs.content or "").strip() == kept.strip()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", None),
        (b"success", None),
        (b"\xef\xbb\xbf  success \n", None),
        (
            b"\n    <xml><ToUserName>o1</ToUserName><FromUserName>gh</FromUserName><CreateTime>1"
            b"</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>plain</Content></xml>",
            "text",
        ),
        (
            b"<xml><MsgType>news</MsgType><Content></Content><ArticleCount>1</ArticleCount><Articles>"
            b"<item><Title>T</Title><Description>D</Description><PicUrl>p</PicUrl><Url>u</Url></item>"
            b"</Articles></xml>",
            "news",
        ),
        (b"<xml><MsgType>transfer_customer_service</MsgType></xml>", "transfer_customer_service"),
    ],
)
def test_response_decode__lenient_shapes__are_understood(body: bytes, expected: str | None) -> None:
    decoded = protocol.response_decode(body, token=TOKEN, encoding_aes_key="", appid=APPID)
    assert decoded.reply.msg_type == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"errcode": 0}',
        b"<html><body>Internal Server Error</body></html>",
        b"<xml><MsgType>text</MsgType>",
        b"<xml><MsgType>dance</MsgType></xml>",
        b"<xml><MsgType>news</MsgType><Articles></Articles></xml>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<xml><MsgType>text</MsgType><Content>&b;</Content></xml>",
        b"\xff\xfe not utf-8",
    ],
)
def test_response_decode__not_a_reply__is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.response_decode(body, token=TOKEN, encoding_aes_key="", appid=APPID)


@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        min_size=0,
        max_size=60,
    )
)
def test_aes_key__anything_but_43_alphanumerics__is_refused(candidate: str) -> None:
    if len(candidate) == 43:
        assert len(protocol.aes_key(candidate)) == 32
    else:
        with pytest.raises(protocol.ProtocolError):
            protocol.aes_key(candidate)
