"""The ledger's one write primitive, `ledger_transfer`, and opening accounts.

    escrow = escrow_account_open(reference=f"redpacket:{packet.pk}")
    ledger_transfer(
        idempotency_key=f"redpacket:{packet.pk}:grab:{grab.pk}",
        kind=TransactionKind.PACKET_GRAB,
        reason="Red packet from Bob",
        legs=[Leg(escrow.pk, -amount), Leg(wallet.pk, amount)],
    )

A transfer runs in the caller's transaction (a savepoint of it): it locks its
accounts in id order (FOR NO KEY UPDATE: one order for every transfer, so no two
deadlock), refuses to take an account below zero (InsufficientFunds), and
writes one LedgerTransaction with its postings; the database's triggers move
the balances and its CHECK refuses an overdraft even if this code were wrong.

The idempotency key makes a retry harmless: the same key with the same kind and
legs returns the original transaction (`created=False`) and moves nothing; the
same key with other legs raises IdempotencyConflict. Two racing calls with one
key end the same way: one writes, the other returns (or conflicts with) it.

These are system-level moves and take no ticket. Call them from a service that
has checked the ticket of the user whose action it is (`wallet_spend` does), or
from the system's own tasks (crediting grabs, refunds, provider notifications).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from wallet.exceptions import IdempotencyConflict, InsufficientFunds, LedgerError
from wallet.models import AccountKind, LedgerAccount, LedgerTransaction, Posting, TransactionKind
from wallet.types import Leg, Transfer
from wechat_core.metrics import counter
from wechat_core.transactions import after_commit

LEDGER_TRANSFERS = counter(
    "wallet_ledger_transfers_total",
    "Ledger transactions committed, by kind.",
    ["kind"],
    process_labels=True,
)
LEDGER_MOVED_FEN = counter(
    "wallet_ledger_moved_fen_total",
    "Fen moved by committed ledger transactions (the sum of their credits), by kind.",
    ["kind"],
)
LEDGER_REFUSALS = counter(
    "wallet_ledger_refusals_total",
    "Transfers refused, by kind and reason (insufficient_funds, idempotency_conflict).",
    ["kind", "reason"],
)
LEDGER_REPEATS = counter(
    "wallet_ledger_repeats_total",
    "Transfers whose idempotency key was used before (nothing moved again), by kind.",
    ["kind"],
)
# Far beyond any real amount, far inside bigint: sums of postings cannot overflow.
MAX_AMOUNT_FEN = 10**15
_BALANCE_CHECK = "ledger_account_balance_not_negative"


def _normalized(legs: Sequence[Leg]) -> tuple[Leg, ...]:
    if len(legs) < 2:
        raise LedgerError("A transfer needs at least two legs.")
    accounts: set[int] = set()
    for leg in legs:
        if type(leg.account_id) is not int or type(leg.amount) is not int:
            raise LedgerError("Account ids and amounts are integers (fen).")
        if leg.amount == 0 or abs(leg.amount) > MAX_AMOUNT_FEN:
            raise LedgerError(f"A leg's amount must be non-zero fen within ±{MAX_AMOUNT_FEN}.")
        if leg.account_id in accounts:
            raise LedgerError(f"Account {leg.account_id} appears twice in one transfer.")
        accounts.add(leg.account_id)
    if sum(leg.amount for leg in legs) != 0:
        raise LedgerError("The legs of a transfer must sum to zero.")
    return tuple(sorted(legs, key=lambda leg: leg.account_id))


def _check_labels(idempotency_key: str, kind: str, reason: str) -> None:
    if not 0 < len(idempotency_key) <= 128:
        raise LedgerError("An idempotency key has 1 to 128 characters.")
    if kind not in TransactionKind.values:
        raise LedgerError(f"Unknown transaction kind {kind!r}.")
    if not 0 < len(reason) <= 200:
        raise LedgerError("A reason has 1 to 200 characters.")


def _original(key: str, kind: str, legs: tuple[Leg, ...]) -> Transfer | None:
    """The transaction already written under `key`, if it is this transfer."""
    found = LedgerTransaction.objects.filter(idempotency_key=key).first()
    if found is None:
        return None
    recorded = list(
        Posting.objects.filter(transaction=found)
        .order_by("account_id")
        .values_list("account_id", "amount")
    )
    if found.kind != kind or recorded != [(leg.account_id, leg.amount) for leg in legs]:
        LEDGER_REFUSALS.inc(kind, "idempotency_conflict")
        raise IdempotencyConflict(
            "This idempotency key was used for a different transfer.",
            details={"idempotency_key": key, "transaction_id": found.pk},
        )
    LEDGER_REPEATS.inc(kind)
    return Transfer(transaction=found, created=False)


def _lock(legs: tuple[Leg, ...]) -> dict[int, LedgerAccount]:
    ids = [leg.account_id for leg in legs]  # sorted: every transfer locks in one order
    accounts = {
        account.pk: account
        for account in LedgerAccount.objects.select_for_update(no_key=True)
        .filter(pk__in=ids)
        .order_by("pk")
    }
    if len(accounts) != len(ids):
        raise LedgerError(f"Unknown ledger account(s): {sorted(set(ids) - set(accounts))}.")
    return accounts


def _ensure_funds(accounts: Mapping[int, LedgerAccount], legs: tuple[Leg, ...], kind: str) -> None:
    for leg in legs:
        account = accounts[leg.account_id]
        if leg.amount < 0 and not account.may_go_negative and account.balance + leg.amount < 0:
            LEDGER_REFUSALS.inc(kind, "insufficient_funds")
            details = {"account_id": account.pk, "balance": account.balance, "needed": -leg.amount}
            raise InsufficientFunds(details=details)


def _count_on_commit(kind: str, legs: tuple[Leg, ...]) -> None:
    moved = sum(leg.amount for leg in legs if leg.amount > 0)

    def count() -> None:
        LEDGER_TRANSFERS.inc(kind)
        LEDGER_MOVED_FEN.inc(kind, amount=moved)

    after_commit(count, name="metrics")


def ledger_transfer(
    *,
    idempotency_key: str,
    kind: str,
    reason: str,
    legs: Sequence[Leg],
    metadata: Mapping[str, Any] | None = None,
) -> Transfer:
    """Move money between ledger accounts in one balanced transaction (see the module)."""
    normalized = _normalized(legs)
    _check_labels(idempotency_key, kind, reason)
    try:
        with transaction.atomic():
            accounts = _lock(normalized)
            original = _original(idempotency_key, kind, normalized)
            if original is not None:
                return original
            _ensure_funds(accounts, normalized, kind)
            written = LedgerTransaction.objects.create(
                idempotency_key=idempotency_key,
                kind=kind,
                reason=reason,
                metadata=dict(metadata or {}),
            )
            Posting.objects.bulk_create(
                Posting(transaction=written, account_id=leg.account_id, amount=leg.amount)
                for leg in normalized
            )
    except IntegrityError as error:
        # Either a racing transfer with this key committed first (the unique key
        # refused ours), or the database refused an overdraft this code missed.
        original = _original(idempotency_key, kind, normalized)
        if original is not None:
            return original
        if _BALANCE_CHECK in str(error):
            LEDGER_REFUSALS.inc(kind, "insufficient_funds")
            raise InsufficientFunds() from error
        raise
    _count_on_commit(kind, normalized)
    return Transfer(transaction=written, created=True)


# --- Accounts -----------------------------------------------------------------------


def ledger_account_open(
    *, kind: str, user_id: int | None = None, reference: str = ""
) -> LedgerAccount:
    """The account of this kind for this user (wallets) or reference (the others),
    opened at zero if it does not exist yet. Safe under races (one row wins)."""
    if kind not in AccountKind.values:
        raise LedgerError(f"Unknown account kind {kind!r}.")
    if kind == AccountKind.WALLET:
        if user_id is None or reference:
            raise LedgerError("A wallet belongs to a user and has no reference.")
        lookup: dict[str, Any] = {"kind": kind, "user_id": user_id}
    else:
        if user_id is not None or not 0 < len(reference) <= 64:
            raise LedgerError("Accounts other than wallets are named by a reference (1-64).")
        lookup = {"kind": kind, "reference": reference}
    found = LedgerAccount.objects.filter(**lookup).first()
    if found is not None:
        return found
    LedgerAccount.objects.bulk_create(
        [
            LedgerAccount(
                kind=kind,
                user_id=user_id,
                reference=reference,
                may_go_negative=kind == AccountKind.CLEARING,
            )
        ],
        ignore_conflicts=True,
    )
    return LedgerAccount.objects.get(**lookup)


def wallet_account_open(*, user_id: int) -> LedgerAccount:
    return ledger_account_open(kind=AccountKind.WALLET, user_id=user_id)


def escrow_account_open(*, reference: str) -> LedgerAccount:
    """An escrow account (a red packet's money between sending and grabbing)."""
    return ledger_account_open(kind=AccountKind.ESCROW, reference=reference)


def budget_account_open(*, reference: str) -> LedgerAccount:
    """An activity's budget (shake activities pay prizes from it)."""
    return ledger_account_open(kind=AccountKind.BUDGET, reference=reference)


def clearing_account_open() -> LedgerAccount:
    """The provider's clearing account: money that came in from outside (top-ups)
    minus what went out (withdrawals). Its balance is the negative of what the
    ledger owes; the only account that may go below zero."""
    return ledger_account_open(kind=AccountKind.CLEARING, reference=f"mch:{settings.PAY_MCH_ID}")
