"""Operator pages under /monitoring/ (staff only)."""

from django.urls import path

from monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("data", views.data, name="data"),
    path("modules/<str:module>", views.module_page, name="module"),
    path("versions/<str:version>", views.version_page, name="version"),
    path("alerts", views.alerts, name="alerts"),
    path("alerts/<int:alert_id>", views.alert_detail, name="alert"),
    path("drills", views.drills, name="drills"),
]
