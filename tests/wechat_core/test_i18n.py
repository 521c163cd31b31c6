"""Users' messages in their language: English, or Simplified Chinese when the
request asks for it (Accept-Language); codes never change with the language."""

from __future__ import annotations

import gettext
import re
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import device_json, login_session, make_user

pytestmark = pytest.mark.django_db

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES"


def missing_conversation(**headers: str) -> Any:
    """Bob asks for a conversation that does not exist (a ConversationNotFound)."""
    session = login_session(make_user(nickname="Bob"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Ticket {session.token}", **headers)
    return client.get("/api/messaging/conversations/999999999")


def test_an_error_comes_in_english_by_default() -> None:
    # when: no language asked for
    response = missing_conversation()
    # then
    assert response.status_code == 404
    assert response.json()["code"] == "conversation_not_found"
    assert response.json()["message"] == "No such conversation, or you are not in it."


@pytest.mark.parametrize("header", ["zh-Hans", "zh-CN,zh;q=0.9,en;q=0.8", "zh-hans-cn"])
def test_an_error_comes_in_simplified_chinese_when_asked(header: str) -> None:
    response = missing_conversation(HTTP_ACCEPT_LANGUAGE=header)
    assert response.status_code == 404
    assert response.json()["code"] == "conversation_not_found"  # the same code
    assert response.json()["message"] == "会话不存在，或你不在其中。"  # noqa: RUF001


def test_the_lockout_message_is_translated_and_keeps_retry_after(settings: Any) -> None:
    # given: an account one failure away from its lock
    settings.LOGIN_ACCOUNT_MAX_FAILURES = 1
    alice = make_user(email="alice@example.com")
    body = {"identifier": alice.email, "password": "wrong", "device": device_json()}
    # when: a Chinese client fails to log in
    response = APIClient(REMOTE_ADDR="203.0.113.9").post(
        "/api/accounts/login", body, format="json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    # then
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked"
    assert response.json()["message"] == "该账号登录失败次数过多，请稍后再试。"  # noqa: RUF001
    assert response.json()["details"]["retry_after"] >= 1


def unquote(chunk: str) -> str:
    """The text of a .po string's quoted lines, joined."""
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', chunk)).replace('\\"', '"')


def po_entries(text: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for block in re.split(r"\n\s*\n", text):
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', block, re.MULTILINE)
        msgstr = re.search(r'^msgstr ((?:".*"\n?)+)', block, re.MULTILINE)
        if msgid and msgstr:
            key = unquote(msgid.group(1))
            if key:
                entries[key] = unquote(msgstr.group(1))
    return entries


def test_the_committed_catalog_is_compiled_from_the_po_file() -> None:
    # The .mo is committed (no gettext needed to install or run): it must say
    # what the .po says, every message translated.
    source = po_entries((LOCALE / "django.po").read_text(encoding="utf-8"))
    with (LOCALE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    assert len(source) > 30
    untranslated = [key for key, value in source.items() if not value]
    assert not untranslated, f"translate these in django.po: {untranslated}"
    stale = [key for key, value in source.items() if compiled.gettext(key) != value]
    assert not stale, f"recompile: msgfmt -o django.mo django.po (differs: {stale})"
