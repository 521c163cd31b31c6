"""What developers' replies become in a follower's chat: links in news and music
survive only as http(s) URLs, so nothing a developer sends can run in a client."""

from __future__ import annotations

from publicplatform import protocol
from publicplatform.services import replies

APPID = "wx0123456789abcdef"


def item(url: str, pic: str = "") -> str:
    return (
        f"<item><Title>T</Title><Description>D</Description><PicUrl>{pic}</PicUrl>"
        f"<Url><![CDATA[{url}]]></Url></item>"
    )


def test_reply_body__news_with_script_and_data_links__keeps_only_the_http_ones() -> None:
    # given: a news reply as a developer's server sends it
    articles = [
        item("https://example.com/a", pic="http://example.com/a.png"),
        item("javascript:alert(document.cookie)", pic="javascript:alert(1)"),
        item(" JaVaScRiPt:alert(1)"),
        item("data:text/html,<script>alert(1)</script>"),
    ]
    xml = (
        "<xml><MsgType>news</MsgType><ArticleCount>4</ArticleCount><Articles>"
        + "".join(articles)
        + "</Articles></xml>"
    )
    decoded = protocol.response_decode(xml.encode(), token="t0k", encoding_aes_key="", appid=APPID)
    # when
    body = replies.reply_body(decoded.reply)
    # then
    assert body is not None
    cards = body["official"]["articles"]
    assert [card["url"] for card in cards] == ["https://example.com/a", "", "", ""]
    assert [card["picurl"] for card in cards] == ["http://example.com/a.png", "", "", ""]
    assert "javascript" not in body["text"].lower()
    assert "data:" not in body["text"]


def test_reply_body__music_with_a_script_link__shows_no_link() -> None:
    reply = protocol.Reply("music", title="Song", music_url="javascript:alert(1)")
    body = replies.reply_body(reply)
    assert body is not None
    assert body["official"] == {"type": "music", "url": ""}
    assert "javascript" not in body["text"]
