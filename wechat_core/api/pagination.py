"""Page-number pagination with a client-chosen, bounded page size.

A `page_size` that is not a positive integer is refused (400), not ignored;
one above API_MAX_PAGE_SIZE is lowered to it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import pagination
from rest_framework.request import Request

from wechat_core.errors import InvalidInput


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return int(settings.API_PAGE_SIZE)
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise InvalidInput(
                "Invalid input: page_size: must be a positive integer.",
                details={"fields": {"page_size": ["Must be a positive integer."]}},
            )
        return min(int(raw), int(settings.API_MAX_PAGE_SIZE))

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
