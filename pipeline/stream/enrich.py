"""Stage 1 as one pure step: a raw event becomes an enriched record, plus identity and
session records. The Faust agent and the batch recomputation both call ``process``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from pipeline.definitions import Definitions
from pipeline.errors import InvalidEvent
from pipeline.identity import DeviceIdentity, device_key, resolve
from pipeline.sessions import SessionRules, SessionState, sessionize
from pipeline.timeutil import parse_ts

__all__ = ["Stage1Output", "decode_raw", "process"]


def decode_raw(value: bytes | None) -> dict[str, Any]:
    """Decode a record from the raw topic; ``InvalidEvent`` says what is wrong."""
    if not value:
        raise InvalidEvent("value", "required", "empty record")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidEvent("value", "json", "record is not valid JSON") from None
    if not isinstance(record, dict):
        raise InvalidEvent("value", "type", "record is not a JSON object")
    for key in ("event_id", "type", "timestamp", "received_at"):
        if not isinstance(record.get(key), str):
            raise InvalidEvent(key, "required", f"{key} missing or not a string")
        if key in ("timestamp", "received_at") and parse_ts(record[key]) is None:
            raise InvalidEvent(key, "timestamp", f"{key} is not an ISO-8601 time")
    if not (record.get("anonymous_id") or record.get("user_id")):
        raise InvalidEvent("anonymous_id", "required", "neither anonymous_id nor user_id")
    return record


_NO_DEFINITIONS = Definitions()
#: Events remembered per device to recognise replays: more than a commit interval's worth.
_REMEMBERED = 64


@dataclass
class Stage1Output:
    """What one event produces: the enriched record and any identity/session records."""

    enriched: dict[str, Any]
    identities: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)


def process(
    identity: DeviceIdentity | None,
    session: SessionState | None,
    record: dict[str, Any],
    rules: SessionRules,
    definitions: Definitions = _NO_DEFINITIONS,
) -> tuple[DeviceIdentity, SessionState | None, Stage1Output]:
    """Resolve the person, place the event in its device's session, and tag the defined
    events it is an occurrence of."""
    event_id = str(record["event_id"])
    if session is not None and identity is not None:
        for seen_id, session_id, seq, person_id in session.recent:
            if seen_id == event_id:  # a replay: answer as the first time, change nothing
                return (
                    identity,
                    session,
                    Stage1Output(_enrich(record, person_id, session_id, seq, definitions)),
                )
    device = device_key(record)
    remembered_before = session.recent if session is not None else ()
    identity, person_id, identity_records = resolve(identity, record)
    session, fields, closed = sessionize(session, record, rules, device=device)
    fields = fields or {}
    enriched = _enrich(
        record, person_id, fields.get("session_id"), fields.get("session_seq"), definitions
    )
    if fields.get("late"):
        enriched["flags"] = [*(record.get("flags") or []), "late_event"]
    if session is not None:
        remembered = (event_id, fields.get("session_id"), fields.get("session_seq"), person_id)
        # Carried across sessions: a replay can reach back past a session boundary.
        session = replace(session, recent=(*remembered_before, remembered)[-_REMEMBERED:])
    return identity, session, Stage1Output(enriched, identity_records, closed)


def _enrich(
    record: dict[str, Any],
    person_id: str,
    session_id: str | None,
    seq: int | None,
    definitions: Definitions,
) -> dict[str, Any]:
    return {
        **record,
        "person_id": person_id,
        "account_id": record.get("group_id") or record.get("account_id"),
        "session_id": session_id,
        "session_seq": seq,
        "defined_events": definitions.defined_events(record),
    }
