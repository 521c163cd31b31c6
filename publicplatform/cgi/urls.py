"""URLs of the developer REST API, at the root as Tencent's are (reference §5):
overriding an SDK's base URL, or swapping the host, is all a developer changes."""

from django.urls import path

from publicplatform.cgi import views

urlpatterns = [
    path("token", views.token),
    path("message/custom/send", views.custom_send),
    path("message/template/send", views.template_send),
    path("message/mass/sendall", views.mass_sendall),
    path("message/mass/send", views.mass_send),
    path("user/info", views.user_info),
    path("user/info/batchget", views.user_info_batchget),
    path("user/get", views.user_get),
    path("menu/create", views.menu_create),
    path("menu/get", views.menu_get),
    path("menu/delete", views.menu_delete),
    path("<path:path>", views.unknown),
]
