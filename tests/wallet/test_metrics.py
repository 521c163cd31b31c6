"""Business metrics declared beside the wallet's code: transfers by kind (after commit),
refusals, notifications by outcome, reconciliation problems."""

from __future__ import annotations

from typing import Any

import pytest
from wechatpy.pay.utils import calculate_signature_hmac, dict_to_xml

from tests.factories import fund_wallet, make_user
from wallet.exceptions import InsufficientFunds
from wallet.models import TransactionKind
from wallet.services.ledger import escrow_account_open, ledger_transfer
from wallet.services.topups import topup_notify
from wallet.types import Leg
from wechat_core.metrics import sample_value

pytestmark = pytest.mark.django_db


def test_ledger_metrics__committed_and_refused_transfers__are_counted_by_kind(
    django_capture_on_commit_callbacks: Any,
) -> None:
    wallet = fund_wallet(make_user(), 100)
    escrow = escrow_account_open(reference="redpacket:m")
    done = sample_value("wallet_ledger_transfers_total", kind="packet_send")
    moved = sample_value("wallet_ledger_moved_fen_total", kind="packet_send")
    refused = sample_value(
        "wallet_ledger_refusals_total", kind="packet_send", reason="insufficient_funds"
    )
    with django_capture_on_commit_callbacks(execute=True):
        ledger_transfer(
            idempotency_key="m-1",
            kind=TransactionKind.PACKET_SEND,
            reason="r",
            legs=[Leg(wallet.pk, -60), Leg(escrow.pk, 60)],
        )
    with pytest.raises(InsufficientFunds):
        ledger_transfer(
            idempotency_key="m-2",
            kind=TransactionKind.PACKET_SEND,
            reason="r",
            legs=[Leg(wallet.pk, -60), Leg(escrow.pk, 60)],
        )
    assert sample_value("wallet_ledger_transfers_total", kind="packet_send") == done + 1
    assert sample_value("wallet_ledger_moved_fen_total", kind="packet_send") == moved + 60
    assert (
        sample_value(
            "wallet_ledger_refusals_total", kind="packet_send", reason="insufficient_funds"
        )
        == refused + 1
    )


def test_notify_metrics__forged_and_malformed__are_counted() -> None:
    forged = sample_value("wallet_pay_notifies_total", outcome="forged")
    malformed = sample_value("wallet_pay_notifies_total", outcome="malformed")
    fields = {"appid": "x", "mch_id": "y", "return_code": "SUCCESS"}
    body = dict_to_xml(fields, calculate_signature_hmac(fields, "k" * 32)).encode()
    assert topup_notify(body=body).ok is False
    assert topup_notify(body=b"<nonsense").ok is False
    assert sample_value("wallet_pay_notifies_total", outcome="forged") == forged + 1
    assert sample_value("wallet_pay_notifies_total", outcome="malformed") == malformed + 1
