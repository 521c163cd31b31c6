"""Shaking and opening over the SYNC websocket (docs/protocol.md §10): the `shake`
and `shake.open` frames, their replies and error frames."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.processes import ServerProcess
from tests.factories import Session, login_session, make_user
from tests.shake.conftest import approved_round, start_shake_server
from tests.support.chat import Raw, raw_connect, run

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


async def _shake_and_open(server: ServerProcess, winner: Session, other: Session) -> list[Any]:
    answers: list[Any] = []
    async with raw_connect(server, winner.token) as ws:
        link = Raw(ws)
        assert (await link.recv())["type"] == "hello"
        deadline = time.monotonic() + 60
        record, packet = None, None
        while packet is None:  # the server loads the round and reserves within a second
            assert time.monotonic() < deadline
            answer = await link.reply_to({"type": "shake", "id": "s", "record": record})
            record, packet = answer["record"], answer["packet"]
        answers.append(answer)
        win = {
            "packet": packet["id"], "round": packet["round"], "amount": packet["amount"],
            "sponsor": packet["sponsor"]["id"], "signature": packet["signature"],
        }  # fmt: skip
        answers.append(await link.reply_to({"type": "shake.open", "id": "o", **win}))
    async with raw_connect(server, other.token) as ws:
        link = Raw(ws)
        assert (await link.recv())["type"] == "hello"
        answers.append(await link.reply_to({"type": "shake.open", "id": "x", **win}))
    return answers


@pytest.fixture(scope="module")
def shake_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    server = start_shake_server(live_env, live_log_dir, "shake-ws")
    yield server
    server.stop()


def test_frames__shake_until_a_packet__open__someone_else_refused(
    shake_server: ServerProcess,
) -> None:
    approved_round(rate=1000, prizes_each=20)
    winner, other = login_session(make_user()), login_session(make_user())
    won, opened, refused = run(_shake_and_open(shake_server, winner, other))
    assert (won["type"], won["id"], won["result"]) == ("shake.result", "s", "packet")
    assert won["interval"] == 5
    assert won["capped"] is False
    assert (opened["type"], opened["id"], opened["packet"]) == (
        "shake.opened", "o", won["packet"]["id"],
    )  # fmt: skip
    assert opened["amount"] == won["packet"]["amount"]
    assert (refused["type"], refused["id"], refused["code"]) == ("error", "x", "shake_win_invalid")
