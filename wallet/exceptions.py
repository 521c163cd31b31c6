"""Errors of the wallet, each with a stable code (docs/api.md, docs/wallet.md)."""

from __future__ import annotations

from typing import ClassVar

from wechat_core.errors import Conflict, InvalidInput, NotFound, ServiceError


class LedgerError(ValueError):
    """A ledger transfer that can never be right, so a bug in its caller (not a
    user's error): unbalanced, empty, zero or duplicated legs, an unknown account."""


class InsufficientFunds(Conflict):
    code = "insufficient_funds"
    default_message = "The balance is too low for this."


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_message = "This id was already used for a different request."


class AmountOutOfRange(InvalidInput):
    code = "amount_out_of_range"


class DailyLimitExceeded(Conflict):
    code = "daily_limit_exceeded"


class TopUpNotFound(NotFound):
    code = "topup_not_found"
    default_message = "No such top-up (of yours)."


class WithdrawalNotFound(NotFound):
    code = "withdrawal_not_found"
    default_message = "No such withdrawal (of yours)."


class PaymentsUnavailable(ServiceError):
    """The provider is not configured, or did not answer: nothing was charged."""

    status: ClassVar[int] = 503
    code: ClassVar[str] = "payments_unavailable"
    default_message = "Payments are not available right now; try again later."


class ProviderRefused(ServiceError):
    """The provider answered, and said no (its code is in details)."""

    status: ClassVar[int] = 502
    code: ClassVar[str] = "provider_refused"
    default_message = "The payment provider refused the order."
