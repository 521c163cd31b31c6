"""Input and output shapes of the wallet API. Amounts are integers in fen
(1 CNY = 100 fen); the limits themselves are the services' (settings)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from wallet.models import TopUpStatus, TransactionKind, WithdrawalStatus
from wallet.services.ledger import MAX_AMOUNT_FEN
from wechat_core.api.fields import IdField, StrictCharField

# --- Inputs ----------------------------------------------------------------------


class OrderInput(serializers.Serializer[Any]):
    client_id = StrictCharField(
        min_length=1,
        max_length=64,
        help_text="Your idempotency key: a retry with it returns the first answer.",
    )
    amount = IdField(max_value=MAX_AMOUNT_FEN, help_text="Fen (1 CNY = 100 fen).")


# --- Outputs ---------------------------------------------------------------------


class LimitsOutput(serializers.Serializer[Any]):
    topup_min = serializers.IntegerField()
    topup_max = serializers.IntegerField()
    topup_max_per_day = serializers.IntegerField()
    topup_used_today = serializers.IntegerField(help_text="In the last 24 hours.")
    withdrawal_min = serializers.IntegerField()
    withdrawal_max = serializers.IntegerField()
    withdrawal_max_per_day = serializers.IntegerField()
    withdrawal_used_today = serializers.IntegerField(help_text="In the last 24 hours.")


class WalletOutput(serializers.Serializer[Any]):
    balance = serializers.IntegerField(help_text="Fen.")
    currency = serializers.CharField(help_text='Always "CNY".')
    payments_available = serializers.BooleanField(
        help_text="False when this server has no payment provider: no top-ups or withdrawals."
    )
    limits = LimitsOutput()


class MovementOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="pk", help_text="The posting's id (newest first).")
    transaction = serializers.IntegerField(source="transaction_id")
    kind = serializers.ChoiceField(choices=TransactionKind.choices, source="transaction.kind")
    reason = serializers.CharField(source="transaction.reason")
    amount = serializers.IntegerField(help_text="Fen; positive came in, negative went out.")
    created_at = serializers.DateTimeField(source="transaction.created_at")


class TopUpOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="pk")
    client_id = serializers.CharField()
    amount = serializers.IntegerField()
    status = serializers.ChoiceField(choices=TopUpStatus.choices)
    pay_url = serializers.CharField(
        help_text="The provider's pay page; open it in a browser (empty until ordered)."
    )
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)


class WithdrawalOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="pk")
    client_id = serializers.CharField()
    amount = serializers.IntegerField()
    status = serializers.ChoiceField(choices=WithdrawalStatus.choices)
    failure_code = serializers.CharField()
    failure_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
