"""The operators' live-control page, under /operators/shake/ (staff only)."""

from django.urls import path

from shake import views

app_name = "shake-operators"
urlpatterns = [
    path("", views.control_page, name="control"),
    path("activities/<int:activity_id>/start-next", views.start_next, name="start-next"),
    path("rounds/<int:round_id>/<str:action>", views.control_command, name="command"),
]
