"""Chat from the command line through the Python client (messaging.client), over the
same protocol as every other client: log in over HTTP, then the SYNC websocket.

    manage.py chat --login alice@example.com conversations
    manage.py chat --login alice@example.com direct Bob      # → the chat's id
    manage.py chat --login alice@example.com send 7 "the build is green"
    manage.py chat --login alice@example.com listen --seconds 60 --since 120

The password comes from the environment variable named by --password-env
(default CHAT_PASSWORD) or a prompt, never from argv; a ticket already issued can
be given in CHAT_TICKET instead. `--server` may repeat: the client fails over to
the next one when a server is down, as the web client does. `send` goes through
the client's outbox, so a dropped link resends with the same client message id
and the message is stored once.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import uuid
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging.client import ChatClient, ServerError, Session, login


class Command(BaseCommand):
    help = "Send and receive chat messages as a user, through the SYNC protocol."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--server",
            action="append",
            help="Base URL of a server (repeat for failover); default http://HOST:PORT.",
        )
        parser.add_argument("--login", help="Phone number or e-mail to log in with.")
        parser.add_argument("--password-env", default="CHAT_PASSWORD")
        parser.add_argument("--noinput", action="store_true", help="Never prompt.")
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("conversations", help="List conversations with unread counts.")
        direct = actions.add_parser(
            "direct", help="Open (or find) the 1:1 chat with a friend; prints its id."
        )
        direct.add_argument(
            "friend", help="The friend's nickname, remark, WeChat ID, phone number or user id."
        )
        send = actions.add_parser("send", help="Send a text message.")
        send.add_argument("conversation", type=int)
        send.add_argument("text")
        send.add_argument("--client-msg-id", help="Idempotency key (default: a new one).")
        listen = actions.add_parser("listen", help="Print entries as they arrive, as JSON lines.")
        listen.add_argument("--seconds", type=float, default=30.0, help="How long to listen.")
        listen.add_argument("--since", type=int, default=None, help="Sync key to resume from.")

    def handle(self, *args: Any, **options: Any) -> None:
        # httpx logs every request at INFO: that is not this command's output.
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        servers = [url.rstrip("/") for url in options["server"] or []]
        servers = servers or [f"http://{settings.HOST}:{settings.PORT}"]
        try:
            asyncio.run(self._run(servers, options))
        except ServerError as error:
            raise CommandError(str(error)) from error
        except (httpx.HTTPError, OSError, TimeoutError) as error:
            raise CommandError(f"Could not reach {', '.join(servers)}: {error}") from error

    async def _run(self, servers: list[str], options: dict[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            session = await self._session(http, servers, options)
            action = options["action"]
            if action == "conversations":
                await self._conversations(http, session)
                return
            if action == "direct":
                await self._direct(http, session, options["friend"])
                return
            endpoints = [url.replace("http", "ws", 1) + "/ws/sync" for url in servers]
            if action == "send":
                await self._send(endpoints, session, options)
            else:
                await self._listen(endpoints, session, options)

    async def _session(
        self, http: httpx.AsyncClient, servers: list[str], options: dict[str, Any]
    ) -> Session:
        """Log in on the first server that answers (failover, as for the link)."""
        for server in servers[:-1]:
            try:
                return await self._session_on(http, server, options)
            except (httpx.TransportError, OSError):
                continue
        return await self._session_on(http, servers[-1], options)

    async def _session_on(
        self, http: httpx.AsyncClient, server: str, options: dict[str, Any]
    ) -> Session:
        ticket = os.environ.get("CHAT_TICKET", "")
        if ticket:
            response = await http.get(
                f"{server}/api/accounts/me", headers={"Authorization": f"Ticket {ticket}"}
            )
            if response.status_code != 200:
                raise CommandError(f"CHAT_TICKET was refused: {_error_of(response)}")
            return Session(server, ticket, int(response.json()["id"]), 0)
        if not options["login"]:
            raise CommandError("Give --login (or a ticket in CHAT_TICKET).")
        password = os.environ.get(options["password_env"], "")
        if not password and not options["noinput"]:
            password = getpass.getpass(f"Password for {options['login']}: ")
        if not password:
            raise CommandError(f"Set {options['password_env']} or run on a terminal.")
        try:
            return await login(http, server, options["login"], password, name="manage.py chat")
        except httpx.HTTPStatusError as error:
            raise CommandError(f"Login refused: {_error_of(error.response)}") from error

    async def _friends(self, http: httpx.AsyncClient, session: Session) -> list[dict[str, Any]]:
        """Every friend (each row: `user` and `remark`), all pages."""
        friends: list[dict[str, Any]] = []
        url: str | None = f"{session.base_url}/api/contacts/friends"
        while url:
            response = await http.get(url, headers=session.headers)
            response.raise_for_status()
            page = response.json()
            friends += page["results"]
            url = page.get("next")
        return friends

    async def _conversations(self, http: httpx.AsyncClient, session: Session) -> None:
        response = await http.get(
            f"{session.base_url}/api/messaging/conversations", headers=session.headers
        )
        response.raise_for_status()
        rows = response.json()["results"]
        if not rows:
            self.stdout.write(
                "No conversations yet. Open one with a friend: manage.py chat --login ... "
                "direct <nickname>"
            )
            return
        names = {
            f["user"]["id"]: f.get("remark") or f["user"]["nickname"]
            for f in await self._friends(http, session)
        }
        for row in rows:
            conversation = row["conversation"]
            name = conversation.get("name") or ""
            if conversation["kind"] == "direct":
                peer = conversation.get("peer")
                name = names.get(peer) or (f"user {peer}" if peer else "")
            self.stdout.write(
                f"{conversation['id']:>8}  {conversation['kind']:<8} "
                f"unread {row['unread']:>4}  {name}"
            )

    async def _direct(self, http: httpx.AsyncClient, session: Session, who: str) -> None:
        """The 1:1 chat with a friend named by nickname, remark, WeChat ID, phone or id."""
        wanted = who.strip().casefold()
        matches = [
            f["user"]
            for f in await self._friends(http, session)
            if wanted
            in {
                str(f["user"]["id"]),
                str(f["user"].get("nickname") or "").casefold(),
                str(f.get("remark") or "").casefold(),
                str(f["user"].get("wechat_id") or "").casefold(),
                str(f["user"].get("phone") or "").casefold(),
            }
        ]
        if not matches:
            raise CommandError(f"No friend called {who!r} (nickname, remark, WeChat ID or id).")
        if len(matches) > 1:
            ids = ", ".join(f"{u['id']} ({u['nickname']})" for u in matches)
            raise CommandError(f"{who!r} names several friends: {ids}; give the id.")
        friend = matches[0]
        response = await http.post(
            f"{session.base_url}/api/messaging/conversations/direct",
            headers=session.headers,
            json={"user_id": friend["id"]},
        )
        if response.status_code >= 400:
            raise CommandError(f"Could not open the chat: {_error_of(response)}")
        conversation = response.json()["conversation"]
        self.stdout.write(f"{conversation['id']:>8}  direct   {friend['nickname']}")

    async def _send(self, endpoints: list[str], session: Session, options: dict[str, Any]) -> None:
        client_msg_id = options["client_msg_id"] or f"cli-{uuid.uuid4().hex}"
        async with ChatClient(endpoints, session.ticket) as client:
            ack = await client.send(
                options["conversation"],
                {"kind": "text", "text": options["text"]},
                client_msg_id=client_msg_id,
            )
        self.stdout.write(json.dumps(ack))

    async def _listen(
        self, endpoints: list[str], session: Session, options: dict[str, Any]
    ) -> None:
        since = options["since"]
        client = ChatClient(endpoints, session.ticket, key=since or 0)
        async with client:
            if since is None:
                # Only what arrives from now on: start from the newest key.
                await client.sync_now()
                while not client.entries.empty():
                    client.entries.get_nowait()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + options["seconds"]
            while (left := deadline - loop.time()) > 0:
                try:
                    entry = await asyncio.wait_for(client.entries.get(), left)
                except TimeoutError:
                    break
                self.stdout.write(json.dumps(entry, ensure_ascii=False))
                self.stdout.flush()
            self.stderr.write(f"key {client.key}")


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('code')}: {body.get('message')}"
    except ValueError:
        return f"HTTP {response.status_code}"
