"""URLs of gray release (mounted under /api/)."""

from django.urls import path

from grayrelease.api import views

urlpatterns = [
    path("flags", views.FlagsView.as_view(), name="flags"),
    path("grayrelease/features", views.FeatureListView.as_view(), name="features"),
    path("grayrelease/preview", views.PreviewView.as_view(), name="feature-preview"),
    path("grayrelease/features/<str:key>", views.FeatureDetailView.as_view(), name="feature"),
    path(
        "grayrelease/features/<str:key>/kill-switch",
        views.KillSwitchView.as_view(),
        name="feature-kill-switch",
    ),
    path(
        "grayrelease/features/<str:key>/schedule",
        views.ScheduleView.as_view(),
        name="feature-schedule",
    ),
    path(
        "grayrelease/features/<str:key>/changes",
        views.ChangeListView.as_view(),
        name="feature-changes",
    ),
]
