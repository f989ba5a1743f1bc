"""The event contract: ``schemas/event.schema.json``, compiled once, plus generic limits.

The JSON Schema is the one source of what a valid message is; this module turns its
verdicts into ``InvalidEvent`` errors naming the field and the rule. Limits that depend on
settings (nesting depth, string length) cannot be written in JSON Schema and are checked
here, iteratively so a hostile 10,000-deep document cannot exhaust the stack.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Any

import fastjsonschema
import orjson

from pipeline.errors import InvalidEvent
from pipeline.resources import resource_dir

__all__ = ["check_limits", "event_schema", "validate_batch_envelope", "validate_message"]


@cache
def event_schema() -> dict[str, Any]:
    """The parsed event JSON Schema."""
    schema: dict[str, Any] = orjson.loads(
        (resource_dir("schemas") / "event.schema.json").read_bytes()
    )
    return schema


@cache
def _validator(definition: str | None = None) -> Callable[[Any], Any]:
    # fastjsonschema annotates the dict it compiles; keep the shared one pristine.
    schema = copy.deepcopy(event_schema())
    if definition is not None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    return fastjsonschema.compile(schema)


def _field_of(exc: fastjsonschema.JsonSchemaValueException, message: dict[str, Any]) -> str:
    path = [str(p) for p in (exc.path or [])[1:]]  # drop the leading "data"
    if exc.rule == "required" and isinstance(exc.rule_definition, list):
        holder: Any = message
        for part in path:
            holder = holder.get(part) if isinstance(holder, dict) else None
        missing = [
            k for k in exc.rule_definition if not isinstance(holder, dict) or k not in holder
        ]
        path.append(missing[0] if missing else "?")
    return ".".join(path) or "message"


def validate_message(message: dict[str, Any]) -> None:
    """Raise ``InvalidEvent(field, rule)`` if ``message`` breaks the event schema."""
    _validate(_validator(), message)


def validate_batch_envelope(body: dict[str, Any]) -> None:
    """Raise ``InvalidEvent`` if a batch body's own fields (not its messages) are wrong."""
    _validate(_validator("batch"), body)


def _validate(validator: Callable[[Any], Any], message: dict[str, Any]) -> None:
    try:
        validator(message)
    except fastjsonschema.JsonSchemaValueException as exc:
        field = _field_of(exc, message)
        if exc.rule == "anyOf" and field == "message":  # the identity rule at the top
            for key in ("userId", "anonymousId"):
                value = message.get(key)
                if value is not None and (isinstance(value, bool)
                                          or not isinstance(value, str | int)):
                    raise InvalidEvent(key, "type", "must be a string or an integer") from None
            raise InvalidEvent("anonymousId", "required",
                               "anonymousId or userId is required") from None
        if exc.rule == "not":  # the only `not` in the schema refuses placeholder ids
            raise InvalidEvent(field, "junk_id", "is a placeholder (null, undefined, 0, guest"
                               "...), not an id") from None
        if exc.rule == "required":
            text = "is required"
        else:  # "data.context.page.url must be string" -> "must be string"
            text = exc.message.removeprefix(exc.name or "").strip()
        raise InvalidEvent(field, str(exc.rule or "schema"), text) from None


def check_limits(message: dict[str, Any], max_depth: int, max_string: int) -> None:
    """Refuse nesting deeper than ``max_depth`` and strings longer than ``max_string``."""
    stack: list[tuple[Any, int, str]] = [(message, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            if depth > max_depth:
                raise InvalidEvent(
                    path or "message", "max_depth", f"nesting deeper than {max_depth} levels"
                )
            for key, item in value.items():
                if len(key) > max_string:
                    raise InvalidEvent(
                        path or "message",
                        "max_length",
                        f"a key is longer than {max_string} characters",
                    )
                stack.append((item, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            if depth > max_depth:
                raise InvalidEvent(path, "max_depth", f"nesting deeper than {max_depth} levels")
            stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str) and len(value) > max_string:
            raise InvalidEvent(path, "max_length", f"{path} is longer than {max_string} characters")
