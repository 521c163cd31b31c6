"""The ledger primitive: balanced transfers, idempotency, overdrafts refused, and the
moves red packets will make (wallet → escrow → wallets)."""

from __future__ import annotations

import pytest

from tests.factories import fund_wallet, login_ticket, make_user
from wallet.exceptions import IdempotencyConflict, InsufficientFunds, LedgerError
from wallet.models import AccountKind, LedgerAccount, LedgerTransaction, Posting, TransactionKind
from wallet.selectors import ledger_balance
from wallet.services.ledger import (
    budget_account_open,
    clearing_account_open,
    escrow_account_open,
    ledger_account_open,
    ledger_transfer,
    wallet_account_open,
)
from wallet.services.wallets import wallet_credit, wallet_spend
from wallet.types import Leg

pytestmark = pytest.mark.usefixtures("balanced_now")


def _balance(account: LedgerAccount) -> int:
    return ledger_balance(account_id=account.pk)


def test_ledger_transfer__balanced_legs__moves_the_money_and_records_postings() -> None:
    # given
    alice = make_user()
    wallet = fund_wallet(alice, 1000)
    escrow = escrow_account_open(reference="redpacket:1")
    # when
    transfer = ledger_transfer(
        idempotency_key="redpacket:1:send",
        kind=TransactionKind.PACKET_SEND,
        reason="Red packet to Bob",
        legs=[Leg(wallet.pk, -300), Leg(escrow.pk, 300)],
    )
    # then
    assert transfer.created is True
    assert (_balance(wallet), _balance(escrow)) == (700, 300)
    postings = sorted(transfer.transaction.postings.values_list("account_id", "amount"))
    assert postings == sorted([(wallet.pk, -300), (escrow.pk, 300)])
    assert transfer.transaction.reason == "Red packet to Bob"


def test_ledger_transfer__same_key_and_legs_again__returns_the_original_and_moves_nothing() -> None:
    # given
    wallet = fund_wallet(make_user(), 1000)
    escrow = escrow_account_open(reference="redpacket:2")
    legs = [Leg(wallet.pk, -300), Leg(escrow.pk, 300)]
    first = ledger_transfer(
        idempotency_key="k-2", kind=TransactionKind.PACKET_SEND, reason="r", legs=legs
    )
    # when: the same request again (a retry), legs in another order
    again = ledger_transfer(
        idempotency_key="k-2", kind=TransactionKind.PACKET_SEND, reason="r", legs=legs[::-1]
    )
    # then
    assert again.created is False
    assert again.transaction.pk == first.transaction.pk
    assert (_balance(wallet), _balance(escrow)) == (700, 300)
    assert LedgerTransaction.objects.filter(idempotency_key="k-2").count() == 1


@pytest.mark.parametrize(
    "change",
    ["amount", "account", "kind"],
)
def test_ledger_transfer__same_key_with_other_legs__is_an_idempotency_conflict(change: str) -> None:
    # given
    wallet = fund_wallet(make_user(), 1000)
    escrow = escrow_account_open(reference="redpacket:3")
    other = escrow_account_open(reference="redpacket:4")
    ledger_transfer(
        idempotency_key="k-3",
        kind=TransactionKind.PACKET_SEND,
        reason="r",
        legs=[Leg(wallet.pk, -300), Leg(escrow.pk, 300)],
    )
    legs = {
        "amount": [Leg(wallet.pk, -301), Leg(escrow.pk, 301)],
        "account": [Leg(wallet.pk, -300), Leg(other.pk, 300)],
        "kind": [Leg(wallet.pk, -300), Leg(escrow.pk, 300)],
    }[change]
    kind = TransactionKind.ADJUSTMENT if change == "kind" else TransactionKind.PACKET_SEND
    # when / then
    with pytest.raises(IdempotencyConflict):
        ledger_transfer(idempotency_key="k-3", kind=kind, reason="r", legs=legs)
    assert (_balance(wallet), _balance(escrow), _balance(other)) == (700, 300, 0)


def test_ledger_transfer__more_than_the_balance__is_refused_and_moves_nothing() -> None:
    # given
    wallet = fund_wallet(make_user(), 100)
    escrow = escrow_account_open(reference="redpacket:5")
    # when / then
    with pytest.raises(InsufficientFunds) as refused:
        ledger_transfer(
            idempotency_key="k-5",
            kind=TransactionKind.PACKET_SEND,
            reason="r",
            legs=[Leg(wallet.pk, -101), Leg(escrow.pk, 101)],
        )
    assert refused.value.details == {"account_id": wallet.pk, "balance": 100, "needed": 101}
    assert (_balance(wallet), _balance(escrow)) == (100, 0)
    assert not LedgerTransaction.objects.filter(idempotency_key="k-5").exists()


def test_ledger_transfer__exactly_the_balance__empties_the_wallet() -> None:
    wallet = fund_wallet(make_user(), 100)
    escrow = escrow_account_open(reference="redpacket:6")
    ledger_transfer(
        idempotency_key="k-6",
        kind=TransactionKind.PACKET_SEND,
        reason="r",
        legs=[Leg(wallet.pk, -100), Leg(escrow.pk, 100)],
    )
    assert _balance(wallet) == 0


def test_ledger_transfer__clearing_account__may_go_below_zero() -> None:
    # given: a fresh clearing account (money comes in from outside)
    clearing = clearing_account_open()
    wallet = wallet_account_open(user_id=make_user().pk)
    # when
    ledger_transfer(
        idempotency_key="k-7",
        kind=TransactionKind.TOPUP,
        reason="Top-up",
        legs=[Leg(clearing.pk, -500), Leg(wallet.pk, 500)],
    )
    # then
    assert (_balance(clearing), _balance(wallet)) == (-500, 500)


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        (lambda a, b: [Leg(a, -100), Leg(b, 99)], "sum to zero"),
        (lambda a, b: [Leg(a, 0), Leg(b, 0)], "non-zero"),
        (lambda a, b: [Leg(a, -100)], "two legs"),
        (lambda a, b: [Leg(a, -100), Leg(a, 100)], "twice"),
        (lambda a, b: [Leg(a, -1.5), Leg(b, 1.5)], "integers"),  # type: ignore[arg-type]
        (lambda a, b: [Leg(a, -True), Leg(b, True)], "integers"),
        (lambda a, b: [Leg(a, -100), Leg(999_999_999, 100)], "Unknown ledger account"),
    ],
)
def test_ledger_transfer__invalid_legs__raise_a_ledger_error_and_write_nothing(
    legs, message: str
) -> None:
    wallet = fund_wallet(make_user(), 1000)
    escrow = escrow_account_open(reference="redpacket:8")
    before = Posting.objects.count()
    with pytest.raises(LedgerError, match=message):
        ledger_transfer(
            idempotency_key="k-8",
            kind=TransactionKind.PACKET_SEND,
            reason="r",
            legs=legs(wallet.pk, escrow.pk),
        )
    assert Posting.objects.count() == before


@pytest.mark.parametrize(
    ("key", "kind", "reason"),
    [("", "packet_send", "r"), ("k" * 129, "packet_send", "r"), ("k", "nonsense", "r"),
     ("k", "packet_send", ""), ("k", "packet_send", "r" * 201)],
)  # fmt: skip
def test_ledger_transfer__bad_key_kind_or_reason__raise_a_ledger_error(
    key: str, kind: str, reason: str
) -> None:
    wallet = fund_wallet(make_user(), 1000)
    escrow = escrow_account_open(reference="redpacket:9")
    with pytest.raises(LedgerError):
        ledger_transfer(
            idempotency_key=key,
            kind=kind,
            reason=reason,
            legs=[Leg(wallet.pk, -1), Leg(escrow.pk, 1)],
        )


def test_ledger_transfer__inside_a_callers_transaction__a_refusal_leaves_it_usable() -> None:
    # given: a caller that already wrote something in its transaction
    from django.db import transaction

    wallet = fund_wallet(make_user(), 10)
    escrow = escrow_account_open(reference="redpacket:10")
    with transaction.atomic():
        budget = budget_account_open(reference="activity:1")
        # when: one transfer is refused, the caller goes on
        with pytest.raises(InsufficientFunds):
            ledger_transfer(
                idempotency_key="k-10a",
                kind=TransactionKind.PACKET_SEND,
                reason="r",
                legs=[Leg(wallet.pk, -11), Leg(escrow.pk, 11)],
            )
        ledger_transfer(
            idempotency_key="k-10b",
            kind=TransactionKind.BUDGET_FUND,
            reason="r",
            legs=[Leg(wallet.pk, -10), Leg(budget.pk, 10)],
        )
    # then
    assert (_balance(wallet), _balance(escrow), _balance(budget)) == (0, 0, 10)


def test_ledger_account_open__twice__returns_the_same_account() -> None:
    user = make_user()
    first = wallet_account_open(user_id=user.pk)
    assert wallet_account_open(user_id=user.pk).pk == first.pk
    assert escrow_account_open(reference="x").pk == escrow_account_open(reference="x").pk
    assert first.balance == 0
    assert first.may_go_negative is False
    assert clearing_account_open().may_go_negative is True


@pytest.mark.parametrize(
    "arguments",
    [
        {"kind": AccountKind.WALLET},
        {"kind": AccountKind.WALLET, "user_id": 1, "reference": "x"},
        {"kind": AccountKind.ESCROW},
        {"kind": AccountKind.ESCROW, "user_id": 1, "reference": "x"},
        {"kind": AccountKind.ESCROW, "reference": "x" * 65},
        {"kind": "savings", "reference": "x"},
    ],
)
def test_ledger_account_open__wrong_owner__is_refused(arguments: dict[str, object]) -> None:
    with pytest.raises(LedgerError):
        ledger_account_open(**arguments)  # type: ignore[arg-type]


def test_red_packet_flow__send_grabs_and_refund__escrow_ends_empty_and_sums_hold() -> None:
    # given: what red packets will do, with this app's API
    bob, carol, dave = make_user(), make_user(), make_user()
    fund_wallet(bob, 1000)
    escrow = escrow_account_open(reference="redpacket:42")
    # when: Bob sends 600 fen in the transaction of his message, two grab, the rest returns
    wallet_spend(
        ticket=login_ticket(bob),
        user_id=bob.pk,
        to_account_id=escrow.pk,
        amount=600,
        idempotency_key="redpacket:42:send",
        kind=TransactionKind.PACKET_SEND,
        reason="Red packet to the group",
    )
    for grabber, amount in ((carol, 250), (dave, 100)):
        for _ in range(2):  # a crediting task that runs twice credits once
            wallet_credit(
                user_id=grabber.pk,
                from_account_id=escrow.pk,
                amount=amount,
                idempotency_key=f"redpacket:42:grab:{grabber.pk}",
                kind=TransactionKind.PACKET_GRAB,
                reason="Red packet from Bob",
            )
    wallet_credit(
        user_id=bob.pk,
        from_account_id=escrow.pk,
        amount=250,
        idempotency_key="redpacket:42:refund",
        kind=TransactionKind.PACKET_REFUND,
        reason="Red packet refund",
    )
    # then
    balances = [_balance(wallet_account_open(user_id=u.pk)) for u in (bob, carol, dave)]
    assert balances == [650, 250, 100]
    assert _balance(escrow) == 0
    # and: a grab beyond what is left is refused
    with pytest.raises(InsufficientFunds):
        wallet_credit(
            user_id=carol.pk,
            from_account_id=escrow.pk,
            amount=1,
            idempotency_key="redpacket:42:grab:extra",
            kind=TransactionKind.PACKET_GRAB,
            reason="Red packet from Bob",
        )


def test_wallet_spend__more_than_the_wallet_holds__is_insufficient_funds() -> None:
    bob = make_user()
    fund_wallet(bob, 99)
    escrow = escrow_account_open(reference="redpacket:43")
    with pytest.raises(InsufficientFunds):
        wallet_spend(
            ticket=login_ticket(bob),
            user_id=bob.pk,
            to_account_id=escrow.pk,
            amount=100,
            idempotency_key="redpacket:43:send",
            kind=TransactionKind.PACKET_SEND,
            reason="r",
        )


@pytest.mark.parametrize("amount", [0, -5])
def test_wallet_spend__amount_not_positive__is_a_ledger_error(amount: int) -> None:
    bob = make_user()
    fund_wallet(bob, 100)
    escrow = escrow_account_open(reference="redpacket:44")
    with pytest.raises(LedgerError):
        wallet_spend(
            ticket=login_ticket(bob),
            user_id=bob.pk,
            to_account_id=escrow.pk,
            amount=amount,
            idempotency_key="redpacket:44:send",
            kind=TransactionKind.PACKET_SEND,
            reason="r",
        )
