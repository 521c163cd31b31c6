"""URLs of the shake API (mounted under /api/)."""

from django.urls import path, re_path

from shake.api import views

urlpatterns = [
    path("shake", views.ShakeView.as_view(), name="shake"),
    path("shake/schedule", views.ScheduleView.as_view(), name="shake-schedule"),
    path("shake/assets", views.ManifestView.as_view(), name="shake-assets"),
    path("shake/assets/held", views.AssetsHeldView.as_view(), name="shake-assets-held"),
    re_path(
        r"^shake/assets/(?P<sha256>[0-9a-f]{64})$",
        views.AssetFileView.as_view(),
        name="shake-asset",
    ),
    path("shake/open", views.OpenView.as_view(), name="shake-open"),
    path("shake/packets/<int:prize_id>", views.PacketView.as_view(), name="shake-packet"),
    path("shake/shares", views.SharesView.as_view(), name="shake-shares"),
    path("shake/coupons/<int:prize_id>", views.CouponView.as_view(), name="shake-coupon"),
    path(
        "shake/coupons/<int:prize_id>/retry",
        views.CouponRetryView.as_view(),
        name="shake-coupon-retry",
    ),
]
