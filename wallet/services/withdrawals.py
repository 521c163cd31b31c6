"""Withdrawals: money out to the user's balance at the provider (企业付款; docs/wallet.md).

1. `withdrawal_create` moves the amount from the wallet into the withdrawal's own
   hold account (one per withdrawal) in the same commit as the order, then asks
   a Celery task (queue payout_slow) to send it.
2. `withdrawal_submit` sends the transfer. Success settles it (hold → clearing);
   a final refusal refunds it (hold → wallet); an unknown outcome (no answer,
   SYSTEMERROR) leaves it `processing` until a query says (Celery beat). The
   partner_trade_no makes a repeated send safe: the provider pays it once.
3. Settling and refunding both empty the hold account, so the database itself
   refuses doing both, or either twice (its balance cannot go below zero).
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from wallet import provider
from wallet.exceptions import (
    DailyLimitExceeded,
    IdempotencyConflict,
    PaymentsUnavailable,
    ProviderRefused,
)
from wallet.models import AccountKind, LedgerAccount, TransactionKind, Withdrawal, WithdrawalStatus
from wallet.selectors import withdrawals_used_today
from wallet.services.ledger import (
    clearing_account_open,
    ledger_account_open,
    ledger_transfer,
    wallet_account_open,
)
from wallet.services.topups import amount_check
from wallet.types import Leg, WithdrawalResult
from wechat_core.metrics import counter
from wechat_core.transactions import after_commit, enqueue_on_commit

logger = logging.getLogger(__name__)

WITHDRAWALS = counter(
    "wallet_withdrawals_total",
    "Withdrawals by what happened: requested, succeeded, failed (refunded), unknown.",
    ["outcome"],
    process_labels=True,
)
FINAL = (WithdrawalStatus.SUCCEEDED, WithdrawalStatus.FAILED)


def _count_on_commit(outcome: str) -> None:
    after_commit(lambda: WITHDRAWALS.inc(outcome), name="metrics")


def provider_openid(*, user_id: int) -> str:
    """The user's stable, opaque id at the provider (an openid's shape)."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"openid:{settings.PAY_APPID}:{user_id}".encode(), "sha256"
    ).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


def _enqueue_submit(withdrawal_id: int) -> None:
    # Not enqueued (the broker down): check_pending_orders (beat) finds it as a lost task.
    enqueue_on_commit("wallet.tasks.submit_withdrawal", withdrawal_id, name="withdrawal_submit")


def withdrawal_create(
    *, ticket: VerifiedTicket, user_id: int, client_id: str, amount: int
) -> WithdrawalResult:
    """Withdraw `amount` fen: held at once (InsufficientFunds if the wallet is short),
    paid out by a task. A repeat with the same client id returns the same one."""
    ticket_require(ticket, user_id=user_id)
    provider.provider_config()
    amount_check(
        amount=amount,
        minimum=settings.WALLET_WITHDRAWAL_MIN_FEN,
        maximum=settings.WALLET_WITHDRAWAL_MAX_FEN,
    )
    with transaction.atomic():
        wallet = wallet_account_open(user_id=user_id)
        LedgerAccount.objects.select_for_update(no_key=True).filter(pk=wallet.pk).exists()
        existing = Withdrawal.objects.filter(user_id=user_id, client_id=client_id).first()
        if existing is not None:
            if existing.amount != amount:
                raise IdempotencyConflict(
                    "This client_id was used for a withdrawal of another amount.",
                    details={"client_id": client_id, "amount": existing.amount},
                )
            return WithdrawalResult(withdrawal=existing, duplicate=True)
        used = withdrawals_used_today(user_id=user_id)
        if used + amount > settings.WALLET_WITHDRAWAL_MAX_FEN_PER_DAY:
            raise DailyLimitExceeded(
                "This withdrawal would pass your daily withdrawal limit.",
                details={"limit": settings.WALLET_WITHDRAWAL_MAX_FEN_PER_DAY, "used": used},
            )
        trade_no = "W" + secrets.token_hex(15)
        hold = ledger_account_open(kind=AccountKind.WITHDRAWING, reference=f"withdrawal:{trade_no}")
        withdrawal = Withdrawal.objects.create(
            user_id=user_id,
            client_id=client_id,
            amount=amount,
            partner_trade_no=trade_no,
            hold_account=hold,
        )
        ledger_transfer(
            idempotency_key=f"withdrawal:{withdrawal.pk}:hold",
            kind=TransactionKind.WITHDRAWAL,
            reason="Withdrawal to your WeChat Pay balance",
            legs=[Leg(wallet.pk, -amount), Leg(hold.pk, amount)],
            metadata={"withdrawal": withdrawal.pk, "partner_trade_no": trade_no},
        )
        _count_on_commit("requested")
        _enqueue_submit(withdrawal.pk)
    return WithdrawalResult(withdrawal=withdrawal, duplicate=False)


def withdrawal_submit(*, withdrawal_id: int) -> Withdrawal:
    """Send (or send again) the transfer and apply what the provider answers."""
    withdrawal = Withdrawal.objects.get(pk=withdrawal_id)
    if withdrawal.status in FINAL:
        return withdrawal
    config = provider.provider_config()
    Withdrawal.objects.filter(pk=withdrawal.pk).update(
        attempts=F("attempts") + 1, checked_at=timezone.now()
    )
    state = provider.transfer(
        config,
        partner_trade_no=withdrawal.partner_trade_no,
        openid=provider_openid(user_id=withdrawal.user_id),
        amount=withdrawal.amount,
        description="Wallet withdrawal",
    )
    return _withdrawal_apply(withdrawal_id=withdrawal.pk, state=state)


def _withdrawal_apply(*, withdrawal_id: int, state: provider.TransferState) -> Withdrawal:
    if state.state == "success":
        return _withdrawal_settle(withdrawal_id=withdrawal_id, payment_no=state.payment_no)
    if state.state == "failed":
        return _withdrawal_refund(
            withdrawal_id=withdrawal_id, code=state.code, message=state.message
        )
    if state.state == "not_found":  # never reached the provider: send it again
        return withdrawal_submit(withdrawal_id=withdrawal_id)
    updated = Withdrawal.objects.filter(pk=withdrawal_id, status=WithdrawalStatus.PENDING).update(
        status=WithdrawalStatus.PROCESSING, updated_at=timezone.now()
    )
    if updated:
        WITHDRAWALS.inc("unknown")
        logger.warning("withdrawal %s: outcome unknown (%s); asking later", withdrawal_id, state)
    return Withdrawal.objects.get(pk=withdrawal_id)


def _withdrawal_settle(*, withdrawal_id: int, payment_no: str) -> Withdrawal:
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update(no_key=True).get(pk=withdrawal_id)
        if withdrawal.status in FINAL:
            return withdrawal
        clearing = clearing_account_open()
        ledger_transfer(
            idempotency_key=f"withdrawal:{withdrawal.pk}:settle",
            kind=TransactionKind.WITHDRAWAL_SETTLED,
            reason="Withdrawal paid out",
            legs=[
                Leg(withdrawal.hold_account_id, -withdrawal.amount),
                Leg(clearing.pk, withdrawal.amount),
            ],
            metadata={"withdrawal": withdrawal.pk, "payment_no": payment_no},
        )
        withdrawal.status = WithdrawalStatus.SUCCEEDED
        withdrawal.payment_no = payment_no[:64]
        withdrawal.finished_at = timezone.now()
        withdrawal.save(update_fields=["status", "payment_no", "finished_at", "updated_at"])
        _count_on_commit("succeeded")
        return withdrawal


def _withdrawal_refund(*, withdrawal_id: int, code: str, message: str) -> Withdrawal:
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update(no_key=True).get(pk=withdrawal_id)
        if withdrawal.status in FINAL:
            return withdrawal
        wallet = wallet_account_open(user_id=withdrawal.user_id)
        ledger_transfer(
            idempotency_key=f"withdrawal:{withdrawal.pk}:refund",
            kind=TransactionKind.WITHDRAWAL_REFUND,
            reason=f"Withdrawal refunded: {message or code}"[:200],
            legs=[
                Leg(withdrawal.hold_account_id, -withdrawal.amount),
                Leg(wallet.pk, withdrawal.amount),
            ],
            metadata={"withdrawal": withdrawal.pk, "code": code},
        )
        withdrawal.status = WithdrawalStatus.FAILED
        withdrawal.failure_code = code[:32]
        withdrawal.failure_message = message[:200]
        withdrawal.finished_at = timezone.now()
        withdrawal.save(
            update_fields=[
                "status",
                "failure_code",
                "failure_message",
                "finished_at",
                "updated_at",
            ]
        )
        _count_on_commit("failed")
        return withdrawal


def withdrawals_check_pending() -> int:
    """Send withdrawals whose task was lost, and ask about those whose outcome is
    unknown, each unheard of for WALLET_ORDER_CHECK_AFTER_SECONDS (Celery beat)."""
    try:
        provider.provider_config()
    except PaymentsUnavailable:
        return 0
    cutoff = timezone.now() - timedelta(seconds=settings.WALLET_ORDER_CHECK_AFTER_SECONDS)
    due = list(
        Withdrawal.objects.filter(
            status__in=(WithdrawalStatus.PENDING, WithdrawalStatus.PROCESSING),
            created_at__lte=cutoff,
        )
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lte=cutoff))
        .order_by(F("checked_at").asc(nulls_first=True), "pk")
        .values_list("pk", "status")[: settings.WALLET_ORDER_CHECK_BATCH]
    )
    for withdrawal_id, status in due:
        try:
            if status == WithdrawalStatus.PENDING:
                withdrawal_submit(withdrawal_id=withdrawal_id)
            else:
                withdrawal_check(withdrawal_id=withdrawal_id)
        except Exception:  # one bad withdrawal must not stop the others
            logger.exception("checking withdrawal %s failed", withdrawal_id)
    return len(due)


def withdrawal_check(*, withdrawal_id: int) -> Withdrawal:
    """Ask the provider how a sent withdrawal ended, and apply it."""
    withdrawal = Withdrawal.objects.get(pk=withdrawal_id)
    if withdrawal.status in FINAL:
        return withdrawal
    config = provider.provider_config()
    Withdrawal.objects.filter(pk=withdrawal.pk).update(checked_at=timezone.now())
    try:
        state = provider.transfer_query(config, partner_trade_no=withdrawal.partner_trade_no)
    except (provider.ProviderUnreachable, ProviderRefused) as error:
        logger.warning("withdrawal %s: the query failed (%s)", withdrawal.pk, error)
        return withdrawal
    return _withdrawal_apply(withdrawal_id=withdrawal.pk, state=state)
