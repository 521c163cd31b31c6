"""URLs of the accounts and contacts API (mounted under /api/)."""

from django.urls import path

from accounts.api import internal, views

urlpatterns = [
    path("accounts/register", views.RegisterView.as_view(), name="register"),
    path("accounts/login", views.LoginView.as_view(), name="login"),
    path("accounts/logout", views.LogoutView.as_view(), name="logout"),
    path("accounts/logout-all", views.LogoutAllView.as_view(), name="logout-all"),
    path("accounts/me", views.MeView.as_view(), name="me"),
    path("accounts/me/avatar", views.AvatarView.as_view(), name="avatar"),
    path("accounts/me/password", views.PasswordView.as_view(), name="password"),
    path("accounts/me/wechat-id", views.WeChatIdView.as_view(), name="wechat-id"),
    path("accounts/devices", views.DeviceListView.as_view(), name="devices"),
    path("accounts/devices/<id:device_id>", views.DeviceDetailView.as_view(), name="device"),
    path("contacts/search", views.ContactSearchView.as_view(), name="contact-search"),
    path("contacts/friends", views.FriendListView.as_view(), name="friends"),
    path("contacts/friends/<id:user_id>", views.FriendDetailView.as_view(), name="friend"),
    path("contacts/requests", views.FriendRequestListView.as_view(), name="friend-requests"),
    path(
        "contacts/requests/<id:request_id>/accept",
        views.FriendRequestAcceptView.as_view(),
        name="friend-request-accept",
    ),
    path(
        "contacts/requests/<id:request_id>/decline",
        views.FriendRequestDeclineView.as_view(),
        name="friend-request-decline",
    ),
    path("internal/wechat-ids", internal.wechat_id_claim_for_peer, name="internal-wechat-ids"),
    path("contacts/blocks", views.BlockListView.as_view(), name="blocks"),
    path("contacts/blocks/<id:user_id>", views.BlockDetailView.as_view(), name="block"),
]
