"""`manage.py chat`: an administrator chats through the Python client against real
servers: logs in, lists conversations, sends (once, whatever the retries) and
listens for what arrives."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from devtools.processes import ServerProcess, free_port
from messaging.models import Message
from messaging.services.conversations import direct_open
from tests.factories import PASSWORD, login_session, make_friends, make_user

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chat(monkeypatch: Any) -> tuple[Any, Any, int]:
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    a = login_session(alice)
    conversation = direct_open(ticket=a.ticket, user_id=alice.pk, peer_id=bob.pk).pk
    monkeypatch.setenv("CHAT_PASSWORD", PASSWORD)
    return alice, bob, conversation


def chat_command(servers: list[str], login: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    options: list[str] = []
    for server in servers:
        options += ["--server", server]
    call_command("chat", *options, "--login", login, "--noinput", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_chat_send__first_server_down__fails_over_and_stores_the_message_once(
    asgi_servers: list[ServerProcess], chat: Any
) -> None:
    # given: the first server in the list is not running
    alice, _, conversation = chat
    dead = f"http://127.0.0.1:{free_port()}"
    live = asgi_servers[0].url
    # when: the same send is given twice with one client message id
    first, _ = chat_command(
        [dead, live], alice.email, "send", str(conversation), "hello", "--client-msg-id", "c-1"
    )
    again, _ = chat_command(
        [live, dead], alice.email, "send", str(conversation), "hello", "--client-msg-id", "c-1"
    )
    # then: one message, and the retry got the original ack
    stored = Message.objects.get(conversation_id=conversation, client_msg_id="c-1")
    assert stored.body["text"] == "hello"
    assert json.loads(first)["id"] == json.loads(again)["id"] == stored.pk
    assert json.loads(again)["duplicate"] is True


def test_chat_listen__prints_what_the_peer_sends_while_listening(
    asgi_servers: list[ServerProcess], chat: Any
) -> None:
    # given: Bob listens
    alice, bob, conversation = chat
    urls = [server.url for server in asgi_servers]
    printed: dict[str, str] = {}

    def listen() -> None:
        printed["out"], printed["err"] = chat_command(urls, bob.email, "listen", "--seconds", "8")

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(3)  # let the listener connect and catch up first
    # when: Alice sends from the command line
    chat_command(urls[1:], alice.email, "send", str(conversation), "are you there?")
    listener.join(30)
    # then: Bob's listener printed exactly that message, as a JSON line
    entries = [json.loads(line) for line in printed["out"].splitlines()]
    texts = [e["message"]["body"].get("text") for e in entries if e["kind"] == "message"]
    assert texts == ["are you there?"]
    assert printed["err"].startswith("key ")


def test_chat_conversations__lists_the_chat_with_its_unread_count(
    asgi_servers: list[ServerProcess], chat: Any
) -> None:
    alice, bob, conversation = chat
    chat_command([asgi_servers[0].url], alice.email, "send", str(conversation), "one")
    out, _ = chat_command([asgi_servers[0].url], bob.email, "conversations")
    row = next(line for line in out.splitlines() if line.split()[0] == str(conversation))
    assert "unread    1" in row


def test_chat__wrong_password__fails_with_the_servers_reason(
    asgi_servers: list[ServerProcess], chat: Any, monkeypatch: Any
) -> None:
    alice, _, conversation = chat
    monkeypatch.setenv("CHAT_PASSWORD", "not-the-password")
    with pytest.raises(CommandError, match="Login refused"):
        chat_command([asgi_servers[0].url], alice.email, "send", str(conversation), "x")
    assert not Message.objects.filter(conversation_id=conversation, kind="text").exists()


def test_chat_direct__opens_the_chat_by_the_friends_name__and_lists_it_with_the_name(
    asgi_servers: list[ServerProcess], monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given: Carol, with one friend (Dave) and no chat yet
    caplog.set_level(logging.INFO)
    carol, dave = make_user(nickname="Carol"), make_user(nickname="Dave")
    make_friends(carol, dave)
    monkeypatch.setenv("CHAT_PASSWORD", PASSWORD)
    url, login = [asgi_servers[0].url], carol.email or ""
    # when: she lists her chats
    empty, _ = chat_command(url, login, "conversations")
    # then: she is told there are none, and how to start one
    assert empty.startswith("No conversations yet.")
    # when: she opens the chat with Dave by his name, and lists again
    opened, _ = chat_command(url, login, "direct", "dave")
    listed, _ = chat_command(url, login, "conversations")
    # then: the chat's id and Dave's name, in both
    conversation = int(opened.split()[0])
    assert opened.split()[1:] == ["direct", "Dave"]
    row = next(line for line in listed.splitlines() if line.split()[0] == str(conversation))
    assert row.split()[1] == "direct"
    assert row.endswith("Dave")
    # and: no HTTP client log lines among the command's output
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]


def test_chat_direct__with_someone_not_a_friend__says_so(
    asgi_servers: list[ServerProcess], chat: Any
) -> None:
    alice, _, _ = chat
    with pytest.raises(CommandError, match="No friend called 'Mallory'"):
        chat_command([asgi_servers[0].url], alice.email, "direct", "Mallory")
