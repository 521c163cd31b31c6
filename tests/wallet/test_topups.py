"""Top-up services against the payment sandbox (a real HTTP service): limits, the
provider down, orders left unpaid, and a paid order whose answer we never got."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from devtools.processes import free_port
from tests.factories import login_ticket, make_user
from tests.support.paysandbox import Sandbox
from wallet.exceptions import (
    AmountOutOfRange,
    DailyLimitExceeded,
    PaymentsUnavailable,
    ProviderRefused,
)
from wallet.models import TopUp, TopUpStatus
from wallet.selectors import wallet_summary
from wallet.services.topups import topup_check, topup_create, topups_check_pending

pytestmark = pytest.mark.django_db


def _create(user: Any, amount: int = 500, client_id: str = "c1") -> TopUp:
    result = topup_create(
        ticket=login_ticket(user), user_id=user.pk, client_id=client_id, amount=amount,
        client_ip="127.0.0.1",
    )  # fmt: skip
    return result.topup


def test_topup_create__provider_answers__is_pending_with_the_pay_page(sandbox: Sandbox) -> None:
    topup = _create(make_user())
    assert topup.status == TopUpStatus.PENDING
    assert topup.pay_url.startswith(f"{sandbox.url}/pay/page?prepay_id=wx")
    assert sandbox.order(topup.out_trade_no)["total_fee"] == 500


def test_topup_create__provider_down__refuses_then_the_same_client_id_resumes(
    sandbox: Sandbox, settings: Any
) -> None:
    # given: nothing listens where the provider should be
    alice = make_user()
    settings.PAY_PROVIDER_URL = f"http://127.0.0.1:{free_port()}"
    # when
    with pytest.raises(PaymentsUnavailable):
        _create(alice, client_id="resume")
    # then: the top-up is recorded, not ordered; once the provider is back, a retry orders it
    assert TopUp.objects.get(client_id="resume").status == TopUpStatus.CREATED
    settings.PAY_PROVIDER_URL = sandbox.url
    resumed = _create(alice, client_id="resume")
    assert resumed.status == TopUpStatus.PENDING
    assert TopUp.objects.count() == 1


def test_topup_create__wrong_merchant_key__is_refused_by_the_provider(
    sandbox: Sandbox, settings: Any
) -> None:
    settings.PAY_MCH_KEY = "another-key-the-provider-does-not-know"
    with pytest.raises(ProviderRefused) as refused:
        _create(make_user())
    assert refused.value.status == 502
    assert "签名错误" in refused.value.details["provider_message"]


def test_topup_create__no_merchant_key__payments_are_unavailable(settings: Any) -> None:
    settings.PAY_MCH_KEY = ""
    with pytest.raises(PaymentsUnavailable):
        _create(make_user())
    assert not TopUp.objects.exists()


@pytest.mark.parametrize("amount", [0, 500_001])
def test_topup_create__amount_outside_the_limits__is_refused(sandbox: Sandbox, amount: int) -> None:
    with pytest.raises(AmountOutOfRange) as refused:
        _create(make_user(), amount=amount)
    assert refused.value.details == {"min": 1, "max": 500_000}


def test_topup_create__beyond_the_daily_limit__is_refused(sandbox: Sandbox, settings: Any) -> None:
    settings.WALLET_TOPUP_MAX_FEN_PER_DAY = 1000
    alice = make_user()
    _create(alice, amount=600, client_id="a")
    with pytest.raises(DailyLimitExceeded) as refused:
        _create(alice, amount=401, client_id="b")
    assert refused.value.details == {"limit": 1000, "used": 600}
    _create(alice, amount=400, client_id="c")  # exactly the limit is fine
    # a day later the first ones no longer count
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        _create(alice, amount=1000, client_id="d")


def test_topup_check__paid_but_never_notified__credits_it(sandbox: Sandbox) -> None:
    # given: paid at the provider, and every notification lost
    alice = make_user()
    sandbox.faults(drop_notifies=1000)
    topup = _create(alice, amount=250)
    sandbox.pay(topup.out_trade_no)
    # when: the check asks the provider
    topup_check(topup_id=topup.pk)
    # then
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.PAID
    assert wallet_summary(ticket=login_ticket(alice), user_id=alice.pk).balance == 250


def test_topup_check__unpaid_past_its_expiry__is_closed_at_the_provider(sandbox: Sandbox) -> None:
    topup = _create(make_user())
    with time_machine.travel(timezone.now() + timedelta(hours=2, seconds=1)):
        topup_check(topup_id=topup.pk)
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.CLOSED
    assert sandbox.order(topup.out_trade_no)["state"] == "CLOSED"


def test_topup_check__unpaid_within_its_time__stays_pending(sandbox: Sandbox) -> None:
    topup = _create(make_user())
    topup_check(topup_id=topup.pk)
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.PENDING
    assert topup.checked_at is not None


def test_topups_check_pending__asks_only_about_orders_unheard_of_for_a_while(
    sandbox: Sandbox, settings: Any
) -> None:
    # given: two orders paid without notifications, one of them brand new
    settings.WALLET_ORDER_CHECK_AFTER_SECONDS = 60
    sandbox.faults(drop_notifies=1000)
    alice = make_user()
    old = _create(alice, amount=100, client_id="old")
    TopUp.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    new = _create(alice, amount=200, client_id="new")
    for topup in (old, new):
        sandbox.pay(topup.out_trade_no)
    # when
    asked = topups_check_pending()
    # then
    assert asked == 1
    assert TopUp.objects.get(pk=old.pk).status == TopUpStatus.PAID
    assert TopUp.objects.get(pk=new.pk).status == TopUpStatus.PENDING
