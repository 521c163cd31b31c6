"""The 503 refusals in the OpenAPI schema: a drf-spectacular postprocessing hook
that gives every operation admission control or a blocked campus may refuse a
documented 503 answer (`Overloaded`, docs/overload.md; `CampusBlocked`,
docs/protocol.md). Operators' pages are never refused and get none."""

from __future__ import annotations

import re
from typing import Any

from wechat_core.admission.priorities import Business

OVERLOADED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "FastReject refused the request (the server is overloaded): retry "
    "after `retry_after` seconds (plus jitter) and slow down to the throttle `tier`.",
    "properties": {
        "code": {"type": "string", "enum": ["overloaded"]},
        "message": {"type": "string"},
        "retry_after": {"type": "integer", "minimum": 1},
        "tier": {"type": "integer", "minimum": 0, "maximum": 2},
        "details": {
            "type": "object",
            "properties": {
                "retry_after": {"type": "integer", "minimum": 1},
                "tier": {"type": "integer", "minimum": 0, "maximum": 2},
            },
            "required": ["retry_after", "tier"],
        },
    },
    "required": ["code", "message", "retry_after", "tier", "details"],
}
CAMPUS_BLOCKED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "This campus is blocked (docs/protocol.md section 2a): use another "
    "campus; `endpoints` lists the websocket URLs of those still open.",
    "properties": {
        "code": {"type": "string", "enum": ["campus_blocked"]},
        "message": {"type": "string"},
        "campus": {"type": "string"},
        "endpoints": {"type": "array", "items": {"type": "string"}},
        "details": {
            "type": "object",
            "properties": {
                "campus": {"type": "string"},
                "endpoints": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["campus", "endpoints"],
        },
    },
    "required": ["code", "message", "campus", "endpoints", "details"],
}
_PARAMETER = re.compile(r"\{[^}]+\}")


def add_overloaded_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    from wechat_core.admission.http import route_of_path

    result.setdefault("components", {}).setdefault("schemas", {})["Overloaded"] = OVERLOADED_SCHEMA
    answer = {
        "description": "Refused at once: the server is overloaded (`overloaded`, "
        "docs/overload.md) or its campus is blocked (`campus_blocked`, docs/protocol.md).",
        "headers": {
            "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"},
            "X-Throttle-Tier": {
                "schema": {"type": "integer"},
                "description": "0, 1 or 2 (overloaded only)",
            },
        },
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Overloaded"},
                        {"$ref": "#/components/schemas/CampusBlocked"},
                    ]
                }
            }
        },
    }
    for path, operations in result.get("paths", {}).items():
        business, _ = route_of_path(_PARAMETER.sub("1", path))
        if business == Business.OPERATOR:
            continue
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault("503", answer)
    return result
