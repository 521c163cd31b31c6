"""A validator of JSON values against the typed wire contracts (messaging.wire):
TypedDicts (required, optional and unexpected keys), Literals, unions, lists and
dicts of typed values, with the rules by entry kind and message kind on top."""

from __future__ import annotations

import types
from typing import Any, Literal, NotRequired, Union, get_args, get_origin, get_type_hints

from messaging import wire


def _is_typeddict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__")


def type_errors(value: Any, hint: Any, path: str = "$") -> list[str]:
    """Where `value` does not have the type `hint` (empty when it does)."""
    origin = get_origin(hint)
    if hint is Any:
        return []
    if origin is NotRequired:
        return type_errors(value, get_args(hint)[0], path)
    if origin in (Union, types.UnionType):
        options = [type_errors(value, option, path) for option in get_args(hint)]
        return [] if any(not errors for errors in options) else min(options, key=len)
    if origin is Literal:
        return [] if value in get_args(hint) else [f"{path}: {value!r} not in {get_args(hint)}"]
    if hint is type(None):
        return [] if value is None else [f"{path}: {value!r} is not null"]
    if _is_typeddict(hint):
        return _typeddict_errors(value, hint, path)
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        (item,) = get_args(hint)
        return [e for i, v in enumerate(value) for e in type_errors(v, item, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        key_type, item = get_args(hint)
        errors = [
            f"{path}: key {k!r} is not {key_type}" for k in value if not isinstance(k, key_type)
        ]
        return errors + [e for k, v in value.items() for e in type_errors(v, item, f"{path}.{k}")]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not an integer"]
    if hint in (str, bool):
        return [] if isinstance(value, hint) else [f"{path}: {value!r} is not {hint.__name__}"]
    raise TypeError(f"no check for {hint!r}")


def _typeddict_errors(value: Any, typed: type, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: {value!r} is not an object ({typed.__name__})"]
    hints = get_type_hints(typed, include_extras=True)
    required, optional = wire.keys_of(typed)
    errors = [f"{path}: {typed.__name__} lacks {key!r}" for key in sorted(required - set(value))]
    errors += [
        f"{path}: {typed.__name__} has no {key!r}"
        for key in sorted(set(value) - required - optional)
    ]
    for key, item in value.items():
        if key in hints:
            errors += type_errors(item, hints[key], f"{path}.{key}")
    return errors


def message_errors(message: Any, path: str) -> list[str]:
    errors = type_errors(message, wire.MessageView, path)
    if errors:
        return errors
    if message["recalled"]:
        bodies: tuple[type, ...] = (wire.RecalledBody,)
    elif "adapted_from" in message:
        bodies = (wire.TextBody,)
    else:
        bodies = wire.MESSAGE_BODIES.get(message["kind"], ())
        if not bodies:
            return [f"{path}.kind: unknown message kind {message['kind']!r}"]
    options = [type_errors(message["body"], body, f"{path}.body") for body in bodies]
    return [] if any(not e for e in options) else options[0]


def entry_errors(entry: Any, path: str = "$") -> list[str]:
    """An entry checked as EntryView, then by its kind: which of message,
    conversation and payload it carries, and their types."""
    errors = type_errors(entry, wire.EntryView, path)
    if errors:
        return errors
    if entry["kind"] not in wire.ENTRY_KINDS:
        return [f"{path}.kind: unknown entry kind {entry['kind']!r}"]
    has_message, has_conversation, payload = wire.ENTRY_KINDS[entry["kind"]]
    need = "need" if has_message else "have no"
    if (entry["message"] is not None) != has_message:
        errors.append(f"{path}.message: {entry['kind']} entries {need} a message")
    if (entry["conversation"] is not None) != has_conversation:
        errors.append(f"{path}.conversation: wrong for a {entry['kind']} entry")
    if entry["message"] is not None:
        errors += message_errors(entry["message"], f"{path}.message")
    if payload is None:
        if entry["payload"] is not None:
            errors.append(f"{path}.payload: {entry['kind']} entries have none")
    else:
        errors += type_errors(entry["payload"], payload, f"{path}.payload")
    return errors


def frame_errors(frame: Any) -> list[str]:
    """A server frame checked against its type's definition (entries deeply)."""
    kind = frame.get("type") if isinstance(frame, dict) else None
    typed = wire.SERVER_FRAMES.get(kind) if isinstance(kind, str) else None
    if typed is None:
        return [f"$: unknown server frame {frame!r}"]
    errors = type_errors(frame, typed)
    for index, entry in enumerate(frame.get("entries", [])):
        errors += entry_errors(entry, f"$.entries[{index}]")
    return errors


def sync_answer_errors(body: Any) -> list[str]:
    errors = type_errors(body, wire.SyncAnswer)
    for index, entry in enumerate(body.get("entries", []) if isinstance(body, dict) else []):
        errors += entry_errors(entry, f"$.entries[{index}]")
    return errors
