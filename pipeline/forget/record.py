"""The forget record: what ``autocap forget`` sends through the stream's input topics so
that the worker holding a person's state deletes it (see ``pipeline.forget.workers``).

A JSON object whose first key is ``"forget"`` (like a seed's ``"seed"``), so agents and the
sink tell it from an event without decoding it.
"""

from __future__ import annotations

import orjson

__all__ = ["forget_keys", "forget_record", "is_forget"]

_PREFIX = b'{"forget":'


def forget_record(keys: list[str]) -> bytes:
    """The record telling the worker that owns its partition to delete these table keys."""
    return orjson.dumps({"forget": {"keys": sorted(keys)}})


def is_forget(value: bytes | None) -> bool:
    """Whether a record of an input topic is a forget record rather than an event."""
    return value is not None and value.startswith(_PREFIX)


def forget_keys(value: bytes | None) -> list[str] | None:
    """The table keys a forget record names; None if ``value`` is not a forget record (a
    malformed one names nothing)."""
    if not is_forget(value):
        return None
    try:
        body = orjson.loads(value or b"")["forget"]
        keys = body["keys"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []
