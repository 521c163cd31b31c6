"""Request parsers that bound what they read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from wechat_core.errors import PayloadTooLarge
from wechat_core.jsoninput import InvalidText, json_load


class LimitedJSONParser(BaseParser):
    """JSON bodies up to API_MAX_BODY_BYTES, UTF-8 only, read by
    wechat_core.jsoninput (strict, bounded nesting, the text rule).

    Reads at most limit + 1 bytes, so bodies sent without Content-Length are
    bounded too.
    """

    media_type = "application/json"

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The JSON body exceeds {limit} bytes.", details={"limit": limit})
        if not raw:
            raise ParseError("The request body is empty; send a JSON object.")
        try:
            return json_load(raw.decode("utf-8"))
        except InvalidText:
            raise
        except (UnicodeDecodeError, ValueError) as error:
            raise ParseError(f"The body is not valid JSON: {error}") from error
