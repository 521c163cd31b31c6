"""OpenAPI post-processing: document the error body every operation may return."""

from __future__ import annotations

from typing import Any

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
