"""A new spam filter rolled out behind the guarded feature messaging.spam_filter_candidate:
senders in the rollout get the candidate (here the remote filter, asking a local
spam-scoring service over HTTP), the others the current filter, and each check
counts as an outcome of its variant."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from grayrelease.evaluation import FEATURE_OUTCOMES, evaluate
from grayrelease.types import GuardSpec, Reason, Subject
from messaging.exceptions import MessageRejected
from messaging.services.conversations import direct_open
from messaging.services.sending import message_send
from messaging.services.spam import CANDIDATE_FEATURE
from messaging.types import OutgoingContent
from tests.factories import Session, login_session, make_feature, make_friends, make_user
from wechat_core.metrics import sample_value

pytestmark = pytest.mark.django_db


class SpamService(BaseHTTPRequestHandler):
    """Calls anything mentioning "watches" spam; answers 503 while `down`."""

    down = False
    checked: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SpamService.checked.append(body)
        if SpamService.down:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = json.dumps({"spam": "watches" in body["text"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def spam_service(settings: Any) -> Iterator[None]:
    SpamService.down, SpamService.checked = False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SpamService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.MESSAGING_SPAM_FILTER_CANDIDATE = "messaging.services.spam.remote_filter"
    settings.MESSAGING_SPAM_FILTER_URL = f"http://127.0.0.1:{server.server_address[1]}/check"
    settings.MESSAGING_SPAM_FILTER_BUDGET_MS = 2000
    yield
    server.shutdown()


def chatting(reason: Reason) -> tuple[Session, int]:
    """A sender whose candidate decision has this reason, and their chat with a friend."""
    friend = make_user()
    while True:
        user = make_user()
        if evaluate(key=CANDIDATE_FEATURE, subject=Subject(user_id=user.pk)).reason == reason:
            break
    make_friends(user, friend)
    session = login_session(user)
    return session, direct_open(ticket=session.ticket, user_id=user.pk, peer_id=friend.pk).pk


def send(session: Session, chat: int, text: str) -> Any:
    return message_send(
        ticket=session.ticket,
        user_id=session.user.pk,
        conversation_id=chat,
        client_msg_id=f"c-{time.monotonic_ns()}",
        content=OutgoingContent(kind="text", text=text),
    )


def counted(variant: str, outcome: str) -> float:
    return sample_value(
        FEATURE_OUTCOMES.name, feature=CANDIDATE_FEATURE, variant=variant, outcome=outcome
    )


def test_candidate_filter__treated_sender__gets_the_candidates_verdict_and_control_does_not(
    spam_service: None,
) -> None:
    # given: the candidate at 50 %, guarded; a sender in its rollout and one out of it
    make_feature(CANDIDATE_FEATURE, percentage_bp=5000, guard=GuardSpec())
    treated, treated_chat = chatting(Reason.IN_ROLLOUT)
    control, control_chat = chatting(Reason.OUT_OF_ROLLOUT)
    before = counted("on", "ok"), counted("off", "ok")
    # when / then: the candidate calls the treated sender's text spam
    with pytest.raises(MessageRejected):
        send(treated, treated_chat, "cheap watches")
    # and only the treated sender's text went to the service
    assert send(control, control_chat, "cheap watches").seq > 0
    assert [c["sender_id"] for c in SpamService.checked] == [treated.user.pk]
    assert SpamService.checked[0]["text"] == "cheap watches"
    # and both checks count as ok outcomes of their variants
    assert (counted("on", "ok"), counted("off", "ok")) == (before[0] + 1, before[1] + 1)


def test_candidate_filter__service_down__delivers_anyway_and_counts_a_treated_error(
    spam_service: None,
) -> None:
    make_feature(CANDIDATE_FEATURE, percentage_bp=5000, guard=GuardSpec())
    treated, chat = chatting(Reason.IN_ROLLOUT)
    SpamService.down = True
    before = counted("on", "error")
    # when
    ack = send(treated, chat, "cheap watches")
    # then: flexible availability, and the guard has its evidence
    assert ack.seq > 0
    assert counted("on", "error") == before + 1


def test_candidate_filter__feature_missing__everyone_keeps_the_current_filter(
    spam_service: None,
) -> None:
    # given: a candidate configured but no feature to roll it out
    session, chat = chatting(Reason.UNKNOWN_FEATURE)
    # when
    send(session, chat, "cheap watches")
    # then
    assert SpamService.checked == []
