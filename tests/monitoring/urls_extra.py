"""The project's URLs plus a view written with no monitoring code."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from wechat_core.urls import urlpatterns as project


def brand_new_view(request: HttpRequest, n: int) -> JsonResponse:
    return JsonResponse({"n": n})


urlpatterns = [path("api/brand-new/<int:n>", brand_new_view), *project]
