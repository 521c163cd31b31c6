"""URLs of the users' official-accounts API (mounted under /api/official/)."""

from django.urls import path

from publicplatform.api import views

urlpatterns = [
    path("search", views.SearchView.as_view(), name="official-search"),
    path("following", views.FollowingView.as_view(), name="official-following"),
    path("accounts/<id:account_id>", views.AccountView.as_view(), name="official-account"),
    path("accounts/<id:account_id>/follow", views.FollowView.as_view(), name="official-follow"),
    path(
        "accounts/<id:account_id>/unfollow", views.UnfollowView.as_view(), name="official-unfollow"
    ),
    path("accounts/<id:account_id>/menu", views.MenuTapView.as_view(), name="official-menu-tap"),
    path(
        "conversations/<id:conversation_id>",
        views.ConversationAccountView.as_view(),
        name="official-conversation",
    ),
]
