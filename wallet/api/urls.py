"""URLs of the wallet API (mounted under /api/)."""

from django.urls import path

from wallet.api import views

urlpatterns = [
    path("wallet", views.WalletView.as_view(), name="wallet"),
    path("wallet/history", views.MovementListView.as_view(), name="wallet-history"),
    path("wallet/topups", views.TopUpCreateView.as_view(), name="wallet-topups"),
    path("wallet/topups/<id:topup_id>", views.TopUpDetailView.as_view(), name="wallet-topup"),
    path("wallet/withdrawals", views.WithdrawalCreateView.as_view(), name="wallet-withdrawals"),
    path(
        "wallet/withdrawals/<id:withdrawal_id>",
        views.WithdrawalDetailView.as_view(),
        name="wallet-withdrawal",
    ),
    path("wallet/pay/notify", views.pay_notify, name="wallet-pay-notify"),
]
