"""Business metrics declared beside the accounts code: logins by outcome and platform,
ticket refusals by reason."""

from __future__ import annotations

import pytest

from accounts.exceptions import InvalidCredentials, TicketInvalid, TicketRevoked
from accounts.services.devices import logout
from accounts.services.login import login
from accounts.tickets import ticket_cache_clear, ticket_verify
from tests.factories import PASSWORD, login_session, make_user, web_device
from wechat_core.metrics import sample_value

pytestmark = pytest.mark.django_db


def test_logins__good_and_bad_password__counted_by_outcome_and_platform() -> None:
    make_user(email="metrics-login@example.com")
    ok = sample_value("accounts_logins_total", outcome="ok", platform="ios")
    bad = sample_value("accounts_logins_total", outcome="invalid_credentials", platform="ios")
    device = web_device(platform="ios")
    login(identifier="metrics-login@example.com", password=PASSWORD, device=device, ip=None)
    with pytest.raises(InvalidCredentials):
        login(identifier="metrics-login@example.com", password="wrong", device=device, ip=None)
    assert sample_value("accounts_logins_total", outcome="ok", platform="ios") == ok + 1
    assert (
        sample_value("accounts_logins_total", outcome="invalid_credentials", platform="ios")
        == bad + 1
    )


def test_ticket_refusals__malformed_forged_and_revoked__counted_by_reason() -> None:
    session = login_session(make_user())
    before = {
        reason: sample_value("accounts_ticket_refusals_total", reason=reason)
        for reason in ("malformed", "invalid", "revoked")
    }
    with pytest.raises(TicketInvalid):
        ticket_verify(token="not a ticket")
    ticket_id = session.token.split(".")[1]
    with pytest.raises(TicketInvalid):
        ticket_verify(token=f"t1.{ticket_id}.{'A' * 43}")
    logout(ticket=session.ticket, user_id=session.user.pk)
    ticket_cache_clear()
    with pytest.raises(TicketRevoked):
        ticket_verify(token=session.token)
    after = {
        reason: sample_value("accounts_ticket_refusals_total", reason=reason) for reason in before
    }
    assert {reason: after[reason] - before[reason] for reason in before} == {
        "malformed": 1,
        "invalid": 1,
        "revoked": 1,
    }
