"""Page-number pagination with a client-chosen, bounded page size.

A `page` or `page_size` that is not a positive integer is refused (400), not
ignored (DRF would read `page=` as the first page); a page size above
API_MAX_PAGE_SIZE is lowered to it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import pagination
from rest_framework.request import Request

from wechat_core.errors import InvalidInput


def _positive_integer(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(
            f"Invalid input: {name}: must be a positive integer.",
            details={"fields": {name: ["Must be a positive integer."]}},
        )
    return int(raw)


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int:
        _positive_integer(request, self.page_query_param)
        size = _positive_integer(request, self.page_size_query_param)
        if size is None:
            return int(settings.API_PAGE_SIZE)
        return min(size, int(settings.API_MAX_PAGE_SIZE))

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    f"Results per page (default {settings.API_PAGE_SIZE}, "
                    f"at most {settings.API_MAX_PAGE_SIZE})."
                )
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
