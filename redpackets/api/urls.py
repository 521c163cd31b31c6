"""URLs of the red-packet API (mounted under /api/)."""

from django.urls import path

from redpackets.api import views

urlpatterns = [
    path("redpackets", views.SendView.as_view(), name="redpackets-send"),
    path("redpackets/covers", views.CoverListView.as_view(), name="redpackets-covers"),
    path("redpackets/<id:packet_id>", views.DetailView.as_view(), name="redpackets-detail"),
    path("redpackets/<id:packet_id>/grab", views.GrabView.as_view(), name="redpackets-grab"),
]
