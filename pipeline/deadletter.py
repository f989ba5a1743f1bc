"""The shape of a dead-letter record, shared by every stage that rejects input.

Nothing invalid vanishes: it goes to ``<prefix>.dead_letter`` with the stage that refused it,
a machine-readable reason and field, when it was seen, and the raw payload (truncated to a
bound so a hostile payload cannot blow up the topic).
"""

from __future__ import annotations

import base64
from datetime import datetime

import orjson

from pipeline.timeutil import format_ts

__all__ = ["MAX_PAYLOAD_BYTES", "dead_letter_record"]

MAX_PAYLOAD_BYTES = 64 * 1024


def dead_letter_record(
    *,
    stage: str,
    reason: str,
    field: str | None,
    message: str,
    payload: bytes,
    received_at: datetime,
    write_key: str | None = None,
) -> bytes:
    """Encode one dead-letter record as JSON bytes.

    The payload is kept as UTF-8 text when it decodes, else base64, and cut at
    ``MAX_PAYLOAD_BYTES`` (``payload_truncated`` says so).
    """
    cut = payload[:MAX_PAYLOAD_BYTES]
    try:
        text, encoding = cut.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(cut).decode(), "base64"
    return orjson.dumps(
        {
            "stage": stage,
            "reason": reason,
            "field": field,
            "message": message,
            "received_at": format_ts(received_at),
            "write_key": write_key,
            "payload": text,
            "payload_encoding": encoding,
            "payload_bytes": len(payload),
            "payload_truncated": len(payload) > MAX_PAYLOAD_BYTES,
        }
    )
