"""The event contract: ``schemas/event.schema.json``, compiled once, plus generic limits.

The JSON Schema is the one source of what a valid message is; this module turns its
verdicts into ``InvalidEvent`` errors naming the field and the rule. Validation runs in
jsonschema-rs (compiled Rust, ~15x faster than pure-Python validators: it is on the hot
path of every event). Limits that depend on settings (nesting depth, string length) cannot
be written in JSON Schema and are checked here, iteratively, so a hostile 10,000-deep
document cannot exhaust the stack.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs
import orjson

from pipeline.errors import InvalidEvent
from pipeline.resources import resource_dir

__all__ = ["check_limits", "event_schema", "validate_batch_envelope", "validate_message"]

_MAX_MESSAGE = 200


@cache
def _schema_bytes() -> bytes:
    return (resource_dir("schemas") / "event.schema.json").read_bytes()


def event_schema() -> dict[str, Any]:
    """The parsed event JSON Schema (a fresh copy: callers may change it)."""
    schema: dict[str, Any] = orjson.loads(_schema_bytes())
    return schema


@cache
def _validator(definition: str | None = None) -> Any:
    schema = event_schema()
    if definition is not None:
        schema = {
            "$schema": schema["$schema"],
            "$ref": f"#/definitions/{definition}",
            "definitions": schema["definitions"],
        }
    return jsonschema_rs.validator_for(schema)


def _invalid(error: Any, message: dict[str, Any]) -> InvalidEvent:
    """Translate the validator's first error into field, rule and a short message."""
    path = [str(p) for p in error.instance_path]
    rule = str(error.schema_path[-1]) if error.schema_path else "schema"
    field = ".".join(path) or "message"
    if rule == "anyOf" and not path:  # the identity rule at the top of the schema
        for key in ("userId", "anonymousId"):
            value = message.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
                return InvalidEvent(key, "type", "must be a string or an integer")
        return InvalidEvent("anonymousId", "required", "anonymousId or userId is required")
    if rule == "not":  # the schema's only `not` refuses placeholder ids
        return InvalidEvent(
            field, "junk_id", "is a placeholder (null, undefined, 0, guest...), not an id"
        )
    if rule == "required":
        missing = str(error.kind.property)
        return InvalidEvent(".".join([*path, missing]), "required", "is required")
    text = str(error.message)
    if len(text) > _MAX_MESSAGE:  # messages quote the value, which may be huge
        text = text[:_MAX_MESSAGE] + "..."
    return InvalidEvent(field, rule, text)


def _validate(validator: Any, message: dict[str, Any]) -> None:
    if not validator.is_valid(message):
        raise _invalid(next(iter(validator.iter_errors(message))), message)


def validate_message(message: dict[str, Any]) -> None:
    """Raise ``InvalidEvent(field, rule)`` if ``message`` breaks the event schema."""
    _validate(_validator(), message)


def validate_batch_envelope(body: dict[str, Any]) -> None:
    """Raise ``InvalidEvent`` if a batch body's own fields (not its messages) are wrong."""
    _validate(_validator("batch"), body)


def _within_depth(value: Any, levels_left: int) -> bool:
    # Recursion is bounded by the configured depth (at most 64), and is the fastest way
    # to walk the few containers of an ordinary event.
    if levels_left == 0:
        return False
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if (kind is dict or kind is list) and not _within_depth(item, levels_left - 1):
            return False
    return True


def _has_long_string(value: Any, max_string: int) -> bool:
    if type(value) is dict:
        if any(len(key) > max_string for key in value):
            return True
        value = value.values()
    for item in value:
        kind = type(item)
        if kind is str:
            if len(item) > max_string:
                return True
        elif (kind is dict or kind is list) and _has_long_string(item, max_string):
            return True
    return False


def check_limits(
    message: dict[str, Any], max_depth: int, max_string: int, check_strings: bool = True
) -> None:
    """Refuse nesting deeper than ``max_depth`` and strings longer than ``max_string``.

    ``check_strings=False`` skips the string lengths when the caller knows the whole
    message is shorter than ``max_string`` (the common case, and the cheap one).
    """
    if not _within_depth(message, max_depth):
        raise InvalidEvent(
            _path_to_depth(message, max_depth),
            "max_depth",
            f"nesting deeper than {max_depth} levels",
        )
    if check_strings and _has_long_string(message, max_string):
        raise InvalidEvent(
            _path_to_long(message, max_string), "max_length", f"longer than {max_string} characters"
        )


def _walk(message: dict[str, Any]) -> Any:
    """(path, value, depth) for every node; only used to name the field of an error."""
    stack: list[tuple[str, Any, int]] = [("", message, 1)]
    while stack:
        path, value, depth = stack.pop()
        yield path, value, depth
        if isinstance(value, dict):
            stack.extend(
                (f"{path}.{k}" if path else str(k), v, depth + 1) for k, v in value.items()
            )
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v, depth + 1) for i, v in enumerate(value))


def _path_to_depth(message: dict[str, Any], max_depth: int) -> str:
    deep = (p for p, v, d in _walk(message) if d > max_depth and isinstance(v, dict | list))
    return next(deep, "message") or "message"


def _path_to_long(message: dict[str, Any], max_string: int) -> str:
    return next(
        (p for p, v, _ in _walk(message) if isinstance(v, str) and len(v) > max_string), "message"
    )
