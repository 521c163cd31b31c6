"""Our side of the provider's wire format against WeChat Pay's published example and
an implementation that is not ours (wechatpy), for any fields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechatpy.pay.utils import calculate_signature_hmac

from wallet import paywire

# WeChat Pay's documented signing example (API v2, 安全规范).
DOC_FIELDS = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000",
              "body": "test", "nonce_str": "ibuaiVcKdpRxkhJA"}  # fmt: skip
DOC_KEY = "192006250b4c09247ec02edce69f6a2d"

names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(lambda n: n != "sign")
values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=40
).map(str.strip)


def test_sign__wechat_pays_documented_example__matches() -> None:
    assert paywire.signed_string(DOC_FIELDS, DOC_KEY) == (
        "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100"
        "&nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d"
    )
    assert paywire.sign(DOC_FIELDS, DOC_KEY) == (
        "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
    )


@given(fields=st.dictionaries(names, values, max_size=12), key=st.text(min_size=16, max_size=40))
def test_sign__any_fields__agrees_with_wechatpy(fields: dict[str, str], key: str) -> None:
    assert paywire.sign(fields, key) == calculate_signature_hmac(fields, key)


@given(fields=st.dictionaries(names, values, max_size=12))
def test_signed_xml__any_fields__parses_back_and_verifies(fields: dict[str, str]) -> None:
    body = paywire.signed_xml(fields, DOC_KEY)
    parsed = paywire.parse(body)
    assert paywire.signature_valid(parsed, DOC_KEY)
    assert {k: parsed[k] for k in fields} == fields
    tampered = parsed | {"total_fee": parsed.get("total_fee", "") + "1"}
    assert not paywire.signature_valid(tampered, DOC_KEY)


@pytest.mark.parametrize(
    "body",
    [b"", b"<xml>", b"<root><a>1</a></root>", b"<xml><a><b>1</b></a></xml>",
     b"<xml><a>1</a><a>2</a></xml>", b"<xml><A>1</A></xml>",
     b'<!DOCTYPE x [<!ENTITY e "x">]><xml><a>&e;</a></xml>', b"<xml>" + b"x" * 70000 + b"</xml>"],
)  # fmt: skip
def test_parse__anything_but_a_flat_message__is_refused(body: bytes) -> None:
    with pytest.raises(paywire.WireError):
        paywire.parse(body)


def test_signature_valid__missing_or_other_signature__is_false() -> None:
    fields = dict(DOC_FIELDS)
    assert not paywire.signature_valid(fields, DOC_KEY)
    fields["sign"] = paywire.sign(fields, DOC_KEY)
    assert paywire.signature_valid(fields, DOC_KEY)
    assert paywire.signature_valid(fields | {"sign": fields["sign"].lower()}, DOC_KEY)
    assert not paywire.signature_valid(fields, DOC_KEY + "x")
