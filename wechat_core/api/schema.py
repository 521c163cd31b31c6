"""OpenAPI generation: the error body every operation may return, links between
operations, limits that services enforce, and plain Django views described by
an APIView.

drf-spectacular reads a serializer's own limits (max_length, min_value, ...).
Some limits are not the serializer's to check: a service checks them and answers
its own error code (`invalid_rule`, `group_full`, ...) or a message that names
the setting. A serializer states those in `openapi_limits`, a mapping of field
name to JSON-schema keywords, so that the schema still tells clients the limit
without the serializer refusing the value first with another code.

A field the service requires (where the serializer, shared by several
operations, cannot) is named in `openapi_required`. drf-spectacular also
documents every PATCH body as partial (all fields optional), as DRF's generic
views treat it; a body a PATCH view validates whole says so with
`openapi_whole_on_patch = True`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.views import APIView

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: a stable code, a message for people, and details.",
    "properties": {
        "code": {"type": "string", "example": "invalid"},
        "message": {
            "type": "string",
            "example": "Invalid input: nickname: This field is required.",
        },
        "details": {"type": "object", "additionalProperties": True},
    },
    "required": ["code", "message", "details"],
}

LINKS = "x-links"  # an operation's links until add_links moves them to its answers
View = TypeVar("View", bound=Callable[..., Any])
ATTRIBUTES = ("openapi_limits", "openapi_required", "openapi_whole_on_patch")


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {
        "description": "An error (4xx): see `code` (docs/api.md lists them).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault("default", error)
    return result


def links(answers: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """`extend_schema(extensions=links({201: {"Recall": {...}}}))`: OpenAPI links
    from an operation's answers to the operations that take their ids (what a
    client does next; schemathesis follows them). drf-spectacular has no field
    for links, so they travel as an extension that add_links moves."""
    return {LINKS: {str(status): named for status, named in answers.items()}}


def add_links(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for status, named in operation.pop(LINKS, {}).items():
                operation["responses"][status].setdefault("links", {}).update(named)
    return result


class ServiceLimits(OpenApiSerializerExtension):  # type: ignore[no-untyped-call]
    """A serializer's `openapi_limits` and `openapi_whole_on_patch`, in its schema."""

    target_class = serializers.Serializer
    match_subclasses = True

    @classmethod
    def _matches(cls, target: Any) -> bool:
        return super()._matches(target) and any(getattr(target, name, None) for name in ATTRIBUTES)

    def map_serializer(self, auto_schema: AutoSchema, direction: Any) -> dict[str, Any]:
        target = self.target
        if getattr(target, "openapi_whole_on_patch", False) and getattr(target, "partial", False):
            target = copy.copy(target)
            target.partial = False
        schema: dict[str, Any] = auto_schema._map_serializer(  # type: ignore[no-untyped-call]
            target, direction, bypass_extensions=True
        )
        for name, keywords in getattr(target, "openapi_limits", {}).items():
            schema["properties"][name].update(keywords)
        required = getattr(target, "openapi_required", ())
        if required:
            schema["required"] = sorted({*schema.get("required", []), *required})
        return schema


def described_by(schema_view: type[APIView]) -> Callable[[View], View]:
    """Let the schema describe a plain Django view (the async long-poll, which DRF
    cannot serve) with the `extend_schema` of an APIView that is never routed:
    drf-spectacular documents a URL by its callback's `cls`, as DRF's as_view sets it."""

    def decorate(view: View) -> View:
        view.__dict__.update(cls=schema_view, initkwargs={})
        return view

    return decorate
