"""Reconciliation (seed 003 对账): checks escrows, grabs and credits against the
ledger, redoes a missing credit, and alerts operators on what it cannot repair."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from monitoring.models import Alert, AlertRule
from redpackets.models import CreditState, Grab, Packet, ReconciliationReport
from redpackets.services.grabbing import packet_grab
from redpackets.services.reconcile import redpackets_reconcile
from redpackets.services.sending import packet_send
from tests.redpackets.conftest import group_chat, packet_request
from wallet.models import LedgerAccount

pytestmark = pytest.mark.usefixtures("balanced_now")


def _packet_with_grabs(opened: int = 2) -> tuple[Packet, list[Grab]]:
    chat = group_chat(4, balance=5000)
    owner = chat.sender
    packet = packet_send(
        ticket=owner.ticket,
        user_id=owner.user.pk,
        request=packet_request(chat, total_amount=900, shares=3),
    ).packet
    results = [
        packet_grab(ticket=s.ticket, user_id=s.user.pk, packet_id=packet.pk)
        for s in chat.sessions[1 : 1 + opened]
    ]
    return packet, [result.grab for result in results if result.grab is not None]


def test_reconcile__a_grab_whose_credit_never_ran__is_credited_and_reported_repaired() -> None:
    # given: two grabs whose credit tasks were lost
    _, grabs = _packet_with_grabs()
    # when: the reconciliation runs a minute later
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        report = redpackets_reconcile()
    # then: both credited, reported as repaired, nothing left
    assert {g.credit_state for g in Grab.objects.all()} == {CreditState.CREDITED}
    for grab in grabs:
        wallet = LedgerAccount.objects.get(kind="wallet", user_id=grab.user_id)
        assert wallet.balance == grab.amount
    assert (report.problems_found, report.repaired, report.unresolved) == (2, 2, 0)
    assert {p["problem"] for p in report.problems} == {"credit_missing"}
    assert report.ledger_ok
    # and a second pass finds everything in order
    again = redpackets_reconcile()
    assert (again.problems_found, again.unresolved, again.packets_checked) == (0, 0, 1)


def test_reconcile__a_recent_grab_still_arriving__is_left_to_its_task() -> None:
    _packet_with_grabs(opened=1)
    report = redpackets_reconcile()
    assert report.problems_found == 0
    assert Grab.objects.get().credit_state == CreditState.ARRIVING


def test_reconcile__a_split_that_does_not_add_up__is_unresolved_and_alerts_operators() -> None:
    # given: a grab's recorded amount altered behind the services' back
    _, grabs = _packet_with_grabs(opened=1)
    Grab.objects.filter(pk=grabs[0].pk).update(amount=grabs[0].amount + 1)
    # when
    report = redpackets_reconcile()
    # then: not repairable, so unresolved, and the rule fires
    assert report.unresolved == 1
    assert report.problems[0]["problem"] == "split_mismatch"
    rule = AlertRule.objects.get(name="Red packet reconciliation")
    assert rule.source == "redpackets"
    assert Alert.objects.filter(rule=rule, state="firing").exists()


def test_reconcile_command__reports_json_and_fails_while_problems_remain() -> None:
    _, grabs = _packet_with_grabs(opened=1)
    call_command("reconcile_redpackets")  # all in order: no error
    Grab.objects.filter(pk=grabs[0].pk).update(amount=grabs[0].amount + 1)
    with pytest.raises(CommandError, match="1 problem"):
        call_command("reconcile_redpackets")
    assert ReconciliationReport.objects.count() == 2
