"""URLs of the developer console (mounted under /platform/)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.loginpages import LoginView
from publicplatform.console import views

urlpatterns = [
    path("", views.index, name="console-index"),
    path(
        "login/",
        LoginView.as_view(template_name="publicplatform/login.html"),
        name="console-login",
    ),
    path(
        "logout/", auth_views.LogoutView.as_view(next_page="console-login"), name="console-logout"
    ),
    path("accounts/<id:account_id>/", views.account, name="console-account"),
    path("accounts/<id:account_id>/deliveries/", views.deliveries, name="console-deliveries"),
    path("accounts/<id:account_id>/test/", views.webhook_test, name="console-test"),
]
