"""Root URLs: the web client, the admin, the API and its schema, media."""

from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path, register_converter
from django.views.static import serve
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from monitoring.views import metrics
from wechat_core import views
from wechat_core.api.converters import IdConverter
from wechat_core.api.views import HealthView, TopologyView

register_converter(IdConverter, "id")

admin.site.site_header = "WeChat-style back end: operations"
admin.site.site_title = "Operations"

urlpatterns = [
    path("", views.index, name="index"),
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("monitoring/", include("monitoring.urls")),
    path("operators/shake/", include("shake.urls")),
    path("api/", include("accounts.api.urls")),
    path("api/messaging/", include("messaging.api.urls")),
    path("api/", include("grayrelease.api.urls")),
    path("api/official/", include("publicplatform.api.urls")),
    path("api/", include("wallet.api.urls")),
    path("api/", include("redpackets.api.urls")),
    path("api/", include("shake.api.urls")),
    path("cgi-bin/", include("publicplatform.cgi.urls")),
    path("platform/", include("publicplatform.console.urls")),
    path("api/topology", TopologyView.as_view(), name="topology"),
    path("api/health", HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, not inline (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path(
        "api/redoc/",
        # ReDoc always shows its maker's logo from their CDN (the only outside host).
        csp_update({"img-src": ["https://cdn.redoc.ly"]})(
            SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
    # Avatars are public to anyone who knows the unguessable name; a front proxy
    # may serve MEDIA_ROOT/avatars directly instead (docs/deploy.md).
    re_path(
        r"^media/(?P<path>avatars/[0-9]+/[0-9a-f]{32}\.(?:jpg|png))$",
        serve,
        {"document_root": settings.MEDIA_ROOT},
    ),
]

handler400 = "wechat_core.views.bad_request"
handler403 = "wechat_core.views.permission_denied"
handler404 = "wechat_core.views.not_found"
handler500 = "wechat_core.views.server_error"
