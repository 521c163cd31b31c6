"""The operators' live-control page, under /operators/shake/ (staff only)."""

from django.urls import path

from shake import views

app_name = "shake-operators"
urlpatterns = [
    path("", views.control_page, name="control"),
    path("activities/<int:activity_id>/start-next", views.start_next, name="start-next"),
    path("activities/<int:activity_id>/close", views.close_activity, name="close"),
    path("sponsors/<int:sponsor_id>/assets", views.upload_asset, name="upload-asset"),
    path("rounds/<int:round_id>/<str:action>", views.control_command, name="command"),
]
