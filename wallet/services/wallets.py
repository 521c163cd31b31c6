"""Moves between a user's wallet and the rest of the ledger, for other apps.

`wallet_spend` is the user's own action (sending a red packet, funding an
activity) and takes their ticket; `wallet_credit` is the system paying a user
(a grab's credit, a refund) and takes none. Both run in the caller's
transaction, so a red packet's escrow is funded in the same commit as the
message that carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from wallet.exceptions import LedgerError
from wallet.services.ledger import ledger_transfer, wallet_account_open
from wallet.types import Leg, Transfer


def _positive(amount: int) -> int:
    if type(amount) is not int or amount <= 0:
        raise LedgerError("An amount moved to or from a wallet is a positive number of fen.")
    return amount


def wallet_spend(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    to_account_id: int,
    amount: int,
    idempotency_key: str,
    kind: str,
    reason: str,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer:
    """Take `amount` fen from the user's wallet into `to_account_id` (an escrow, a
    budget). InsufficientFunds when the wallet holds less; a repeat of the key
    returns the original transfer."""
    ticket_require(ticket, user_id=user_id)
    wallet = wallet_account_open(user_id=user_id)
    return ledger_transfer(
        idempotency_key=idempotency_key,
        kind=kind,
        reason=reason,
        legs=[Leg(wallet.pk, -_positive(amount)), Leg(to_account_id, amount)],
        metadata=metadata,
    )


def wallet_credit(
    *,
    user_id: int,
    from_account_id: int,
    amount: int,
    idempotency_key: str,
    kind: str,
    reason: str,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer:
    """Pay `amount` fen from `from_account_id` (an escrow, a budget) into the user's
    wallet, opening it if needed. Exactly once per idempotency key."""
    wallet = wallet_account_open(user_id=user_id)
    return ledger_transfer(
        idempotency_key=idempotency_key,
        kind=kind,
        reason=reason,
        legs=[Leg(from_account_id, -_positive(amount)), Leg(wallet.pk, amount)],
        metadata=metadata,
    )
