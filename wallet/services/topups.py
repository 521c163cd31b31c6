"""Top-ups: money in from the payment provider (docs/wallet.md).

1. `topup_create` records the order (idempotent by the client's id, within the
   limits), commits, then places it at the provider and returns its pay page.
   If the provider does not answer, the same client id resumes it later.
2. The provider's signed notification (`topup_notify`) or a query
   (`topups_check_pending`, Celery beat: a lost notification) reports the
   payment; `topup_credit` credits it exactly once: under the order's row lock,
   with the ledger key `topup:<id>` (clearing → wallet).
3. Orders left unpaid past WALLET_TOPUP_EXPIRE_SECONDS are closed at the
   provider, so they can no longer be paid.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from wallet import paywire, provider
from wallet.exceptions import (
    AmountOutOfRange,
    DailyLimitExceeded,
    IdempotencyConflict,
    PaymentsUnavailable,
    ProviderRefused,
)
from wallet.models import LedgerAccount, TopUp, TopUpStatus, TransactionKind
from wallet.selectors import topups_used_today
from wallet.services.ledger import clearing_account_open, ledger_transfer, wallet_account_open
from wallet.types import Leg, NotifyAnswer, TopUpResult
from wechat_core.metrics import counter
from wechat_core.transactions import after_commit

logger = logging.getLogger(__name__)

TOPUPS = counter(
    "wallet_topups_total",
    "Top-up orders by what happened: created, credited, closed, anomaly.",
    ["outcome"],
    process_labels=True,
)
NOTIFIES = counter(
    "wallet_pay_notifies_total",
    "Payment notifications from the provider, by outcome: credited, repeated, forged, "
    "malformed, wrong_merchant, unknown_order, amount_mismatch, not_paid, unconfigured.",
    ["outcome"],
    process_labels=True,
)
CreditOutcome = Literal["credited", "repeated", "unknown_order", "amount_mismatch"]


def _count_on_commit(outcome: str) -> None:
    after_commit(lambda: TOPUPS.inc(outcome), name="metrics")


def amount_check(*, amount: int, minimum: int, maximum: int) -> None:
    if not minimum <= amount <= maximum:
        raise AmountOutOfRange(
            f"The amount must be between {minimum} and {maximum} fen.",
            details={"min": minimum, "max": maximum},
        )


def topup_create(
    *, ticket: VerifiedTicket, user_id: int, client_id: str, amount: int, client_ip: str | None
) -> TopUpResult:
    """A top-up of `amount` fen, with the provider's pay page. A repeat with the same
    client id returns the same top-up (IdempotencyConflict if the amount differs)."""
    ticket_require(ticket, user_id=user_id)
    config = provider.provider_config()
    amount_check(
        amount=amount, minimum=settings.WALLET_TOPUP_MIN_FEN, maximum=settings.WALLET_TOPUP_MAX_FEN
    )
    topup, created = _topup_record(user_id=user_id, client_id=client_id, amount=amount)
    if topup.status == TopUpStatus.CREATED:
        topup = _topup_order(config, topup, client_ip or "127.0.0.1")
    return TopUpResult(topup=topup, duplicate=not created)


@transaction.atomic
def _topup_record(*, user_id: int, client_id: str, amount: int) -> tuple[TopUp, bool]:
    # The wallet's row lock serialises this user's limit checks.
    wallet = wallet_account_open(user_id=user_id)
    LedgerAccount.objects.select_for_update(no_key=True).filter(pk=wallet.pk).exists()
    existing = TopUp.objects.filter(user_id=user_id, client_id=client_id).first()
    if existing is not None:
        if existing.amount != amount:
            raise IdempotencyConflict(
                "This client_id was used for a top-up of another amount.",
                details={"client_id": client_id, "amount": existing.amount},
            )
        return existing, False
    used = topups_used_today(user_id=user_id)
    if used + amount > settings.WALLET_TOPUP_MAX_FEN_PER_DAY:
        raise DailyLimitExceeded(
            "This top-up would pass your daily top-up limit.",
            details={"limit": settings.WALLET_TOPUP_MAX_FEN_PER_DAY, "used": used},
        )
    topup = TopUp.objects.create(
        user_id=user_id,
        client_id=client_id,
        amount=amount,
        out_trade_no="T" + secrets.token_hex(15),
    )
    _count_on_commit("created")
    return topup, True


def _topup_order(config: provider.ProviderConfig, topup: TopUp, client_ip: str) -> TopUp:
    """Place the recorded order at the provider (outside any transaction: it waits
    on the network) and keep its pay page."""
    try:
        placed = provider.unified_order(
            config,
            out_trade_no=topup.out_trade_no,
            total_fee=topup.amount,
            description="Wallet top-up",
            client_ip=client_ip,
            expires_at=topup.created_at + timedelta(seconds=settings.WALLET_TOPUP_EXPIRE_SECONDS),
        )
    except provider.ProviderUnreachable as error:
        logger.warning("top-up %s: the provider did not answer (%s)", topup.pk, error)
        raise PaymentsUnavailable(
            "The payment provider did not answer; try again with the same client_id."
        ) from None
    except ProviderRefused as refused:
        if refused.details.get("provider_code") == "ORDERPAID":  # paid before we heard
            topup_check(topup_id=topup.pk)
            topup.refresh_from_db()
            return topup
        raise
    TopUp.objects.filter(pk=topup.pk, status=TopUpStatus.CREATED).update(
        status=TopUpStatus.PENDING,
        prepay_id=placed.prepay_id,
        pay_url=placed.pay_url,
        updated_at=timezone.now(),
    )
    topup.refresh_from_db()
    return topup


def topup_credit(
    *, out_trade_no: str, total_fee: int, transaction_id: str, via: str
) -> CreditOutcome:
    """Credit a top-up the provider reports paid: exactly once, only for its amount."""
    with transaction.atomic():
        topup = (
            TopUp.objects.select_for_update(no_key=True).filter(out_trade_no=out_trade_no).first()
        )
        if topup is None:
            return "unknown_order"
        if topup.status == TopUpStatus.PAID:
            return "repeated"
        if topup.status == TopUpStatus.ANOMALY or total_fee != topup.amount:
            if topup.status != TopUpStatus.ANOMALY:
                topup.status = TopUpStatus.ANOMALY
                topup.failure_reason = (
                    f"The provider reported {total_fee} fen paid for {topup.amount} fen."
                )
                topup.save(update_fields=["status", "failure_reason", "updated_at"])
                _count_on_commit("anomaly")
                logger.error("top-up %s: %s", topup.pk, topup.failure_reason)
            return "amount_mismatch"
        wallet = wallet_account_open(user_id=topup.user_id)
        clearing = clearing_account_open()
        transfer = ledger_transfer(
            idempotency_key=f"topup:{topup.pk}",
            kind=TransactionKind.TOPUP,
            reason="Top-up",
            legs=[Leg(clearing.pk, -topup.amount), Leg(wallet.pk, topup.amount)],
            metadata={
                "topup": topup.pk,
                "out_trade_no": out_trade_no,
                "provider_transaction_id": transaction_id,
                "via": via,
            },
        )
        topup.status = TopUpStatus.PAID
        topup.ledger_transaction = transfer.transaction
        topup.provider_transaction_id = transaction_id[:32]
        topup.paid_at = timezone.now()
        topup.save(
            update_fields=[
                "status",
                "ledger_transaction",
                "provider_transaction_id",
                "paid_at",
                "updated_at",
            ]
        )
        _count_on_commit("credited")
        return "credited"


def topup_notify(*, body: bytes) -> NotifyAnswer:
    """The provider's payment notification: verify, then credit once. SUCCESS tells
    the provider to stop retrying; FAIL (forged, unknown, wrong amount) does not."""
    try:
        config = provider.provider_config()
    except PaymentsUnavailable:
        NOTIFIES.inc("unconfigured")
        return NotifyAnswer(ok=False, message="payments are not configured")
    try:
        fields = paywire.parse(body)
    except paywire.WireError:
        NOTIFIES.inc("malformed")
        return NotifyAnswer(ok=False, message="malformed message")
    if not paywire.signature_valid(fields, config.key):
        NOTIFIES.inc("forged")
        logger.warning("a payment notification with a wrong signature was refused")
        return NotifyAnswer(ok=False, message="invalid signature")
    if fields.get("appid") != config.appid or fields.get("mch_id") != config.mch_id:
        NOTIFIES.inc("wrong_merchant")
        return NotifyAnswer(ok=False, message="not our merchant")
    if fields.get("return_code") != "SUCCESS" or fields.get("result_code") != "SUCCESS":
        NOTIFIES.inc("not_paid")
        return NotifyAnswer(ok=True, message="OK")
    fee = fields.get("total_fee", "")
    if not fee.isascii() or not fee.isdigit():
        NOTIFIES.inc("malformed")
        return NotifyAnswer(ok=False, message="malformed total_fee")
    outcome = topup_credit(
        out_trade_no=fields.get("out_trade_no", ""),
        total_fee=int(fee),
        transaction_id=fields.get("transaction_id", ""),
        via="notify",
    )
    NOTIFIES.inc(outcome)
    if outcome in ("credited", "repeated"):
        return NotifyAnswer(ok=True, message="OK")
    return NotifyAnswer(ok=False, message=outcome.replace("_", " "))


# --- Orders we have not heard of: ask (Celery beat) --------------------------------------


def topups_check_pending() -> int:
    """Ask the provider about top-ups unheard of for WALLET_ORDER_CHECK_AFTER_SECONDS
    (a lost notification), oldest question first; how many were asked about."""
    try:
        provider.provider_config()
    except PaymentsUnavailable:
        return 0
    cutoff = timezone.now() - timedelta(seconds=settings.WALLET_ORDER_CHECK_AFTER_SECONDS)
    due = list(
        TopUp.objects.filter(
            status__in=(TopUpStatus.CREATED, TopUpStatus.PENDING), created_at__lte=cutoff
        )
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lte=cutoff))
        .order_by(F("checked_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[: settings.WALLET_ORDER_CHECK_BATCH]
    )
    for topup_id in due:
        try:
            topup_check(topup_id=topup_id)
        except Exception:  # one bad order must not stop the others
            logger.exception("checking top-up %s failed", topup_id)
    return len(due)


def topup_check(*, topup_id: int) -> None:
    """Query one unfinished top-up: credit it if paid, close it if expired."""
    topup = TopUp.objects.get(pk=topup_id)
    if topup.status not in (TopUpStatus.CREATED, TopUpStatus.PENDING):
        return
    config = provider.provider_config()
    TopUp.objects.filter(pk=topup.pk).update(checked_at=timezone.now())
    try:
        state = provider.order_query(config, out_trade_no=topup.out_trade_no)
    except (provider.ProviderUnreachable, ProviderRefused) as error:
        logger.warning("top-up %s: the order query failed (%s)", topup.pk, error)
        return
    if state.trade_state == "SUCCESS":
        topup_credit(
            out_trade_no=topup.out_trade_no,
            total_fee=state.total_fee if state.total_fee is not None else -1,
            transaction_id=state.transaction_id,
            via="query",
        )
        return
    expired = timezone.now() - topup.created_at > timedelta(
        seconds=settings.WALLET_TOPUP_EXPIRE_SECONDS
    )
    if state.trade_state in ("CLOSED", "REVOKED", "PAYERROR"):
        reason = f"The provider reports the order {state.trade_state}."
        _topup_close(topup_id=topup.pk, reason=reason)
    # Expired: closed at the provider first, so it can no longer be paid. If it was
    # paid meanwhile (close refused), the notification or the next check credits it.
    elif expired and provider.close_order(config, out_trade_no=topup.out_trade_no):
        _topup_close(topup_id=topup.pk, reason="Not paid in time; closed.")


def _topup_close(*, topup_id: int, reason: str) -> None:
    with transaction.atomic():
        closed = TopUp.objects.filter(
            pk=topup_id, status__in=(TopUpStatus.CREATED, TopUpStatus.PENDING)
        ).update(status=TopUpStatus.CLOSED, failure_reason=reason[:200], updated_at=timezone.now())
        if closed:
            _count_on_commit("closed")
