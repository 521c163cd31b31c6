"""JSON from clients, and the one rule for the text in it.

Every JSON body (the API's parser, the developer API at /cgi-bin/) and every
SYNC websocket frame is read by `json_load`:

- strict JSON: no NaN or Infinity;
- nesting at most JSON_MAX_DEPTH deep. Python's decoder recurses, and a body
  nested 20,000 levels raised RecursionError (a 500); a body that parses but
  nests hundreds of levels deep breaks whatever walks it next;
- **the text rule**: no string, key or value, anywhere in it, holds U+0000
  (PostgreSQL's text and jsonb cannot store it) or an unpaired surrogate
  (U+D800-U+DFFF alone: not a character, UTF-8 cannot encode it). Either one
  made a send fail inside the database with the text in the error (issue 11).
  Such a string can only arrive as a `\\u` escape, which JSON allows; text from
  forms, query strings and file names is decoded from UTF-8 and NUL-checked by
  Django and DRF already.

A refused string is `invalid_text` (HTTP 400 or an error frame), naming where
it was (`details.field`, e.g. `content.text`); too deep a nesting is a
malformed body or frame.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings

from wechat_core.errors import InvalidInput

# Where a refused string can be: a \u0000 escape, or an escaped surrogate half.
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SUSPECT_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class InvalidText(InvalidInput, ValueError):
    """A string breaking the text rule. Also a ValueError, so that parsers which
    map ValueError to their own 'not valid JSON' answer refuse it too."""

    code = "invalid_text"
    default_message = "Text may not contain U+0000 or an unpaired surrogate."


class JsonTooDeep(ValueError):
    pass


def text_refusal(value: str) -> str | None:
    """Why `value` breaks the text rule, or None when it does not."""
    if "\x00" in value:
        return "contains U+0000"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_load(raw: str | bytes) -> Any:
    """Parse client JSON (see the module); raises InvalidText, or ValueError
    (JsonTooDeep included) for anything that is not acceptable JSON."""
    data = json_parse(raw)
    text_check(data, raw=raw)
    return data


def json_parse(raw: str | bytes) -> Any:
    """Strict JSON nesting at most JSON_MAX_DEPTH deep, strings not yet checked
    (`text_check`): for a caller that reads something first, such as a frame's id."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError as error:
        raise JsonTooDeep(_too_deep()) from error
    # A value cannot nest deeper than it has brackets: most need no walk.
    limit = settings.JSON_MAX_DEPTH
    brackets = (
        raw.count("{") + raw.count("[")
        if isinstance(raw, str)
        else (raw.count(b"{") + raw.count(b"["))
    )
    if brackets > limit:
        _walk(data, depth_limit=limit, text=False)
    return data


def text_check(data: Any, *, raw: str | bytes) -> None:
    """Refuse `data` (parsed from `raw`) if a string in it breaks the text rule."""
    # A refused string needs an escape: raw control characters are not valid JSON.
    suspect = _SUSPECT.search(raw) if isinstance(raw, str) else _SUSPECT_BYTES.search(raw)
    if suspect:
        _walk(data, depth_limit=None, text=True)


def _too_deep() -> str:
    return f"the JSON nests deeper than {settings.JSON_MAX_DEPTH} levels"


def _walk(data: Any, *, depth_limit: int | None, text: bool) -> None:
    """Visit every value without recursion, checking depth or strings."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if text:
                _check_string(value, path)
        elif isinstance(value, dict | list):
            if depth_limit is not None and len(path) >= depth_limit:
                raise JsonTooDeep(_too_deep())
            if isinstance(value, dict):
                for key, item in value.items():
                    if text:
                        _check_string(key, (*path, key))
                    stack.append((item, (*path, key)))
            else:
                stack.extend((item, (*path, index)) for index, item in enumerate(value))


def _check_string(value: str, path: tuple[str | int, ...]) -> None:
    refusal = text_refusal(value)
    if refusal is not None:
        field = ".".join(
            text if text_refusal(text) is None else "?" for text in (str(part) for part in path)
        )
        raise InvalidText(
            f"{field or 'The value'} {refusal}, which no text may hold.",
            details={"field": field},
        )
