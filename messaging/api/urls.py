"""URLs of the messaging API (mounted under /api/messaging/)."""

from django.urls import path

from messaging.api import longpoll, views

urlpatterns = [
    path("send", views.SendView.as_view(), name="messaging-send"),
    path("sync", longpoll.sync_longpoll, name="messaging-sync"),
    path("recall", views.RecallView.as_view(), name="messaging-recall"),
    path("read", views.ReadView.as_view(), name="messaging-read"),
    path("hide", views.HideView.as_view(), name="messaging-hide"),
    path("receipts", views.ReceiptView.as_view(), name="messaging-receipts"),
    path("link-stats", views.LinkStatsView.as_view(), name="messaging-link-stats"),
    path("search", views.SearchView.as_view(), name="messaging-search"),
    path("conversations", views.ConversationListView.as_view(), name="conversations"),
    path("conversations/direct", views.DirectView.as_view(), name="conversation-direct"),
    path(
        "conversations/<id:conversation_id>",
        views.ConversationDetailView.as_view(),
        name="conversation",
    ),
    path(
        "conversations/<id:conversation_id>/settings",
        views.ConversationSettingsView.as_view(),
        name="conversation-settings",
    ),
    path(
        "conversations/<id:conversation_id>/messages",
        views.HistoryView.as_view(),
        name="conversation-messages",
    ),
    path("groups", views.GroupCreateView.as_view(), name="groups"),
    path("groups/<id:conversation_id>", views.GroupDetailView.as_view(), name="group"),
    path(
        "groups/<id:conversation_id>/members",
        views.GroupMembersView.as_view(),
        name="group-members",
    ),
    path(
        "groups/<id:conversation_id>/members/<id:user_id>",
        views.GroupMemberView.as_view(),
        name="group-member",
    ),
    path("groups/<id:conversation_id>/leave", views.GroupLeaveView.as_view(), name="group-leave"),
    path(
        "groups/<id:conversation_id>/admins/<id:user_id>",
        views.GroupAdminView.as_view(),
        name="group-admin",
    ),
    path("uploads", views.UploadView.as_view(), name="uploads"),
    path("attachments/<uuid:attachment_id>", views.AttachmentView.as_view(), name="attachment"),
]
