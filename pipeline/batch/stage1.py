"""Stage 1 in batch, one device at a time, with the stream's own pure step (``process``).

A device's events are placed in (timestamp, event_id) order: the order in which the stream
gives the same answers (see ``pipeline/sessions.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.identity import DeviceIdentity
from pipeline.sessions import SessionRules, SessionState, summary
from pipeline.stream.enrich import process

__all__ = ["Answer", "DeviceResult", "recompute_device"]


@dataclass(frozen=True)
class Answer:
    """What stage 1 says about one event."""

    event_id: str
    session_id: str | None
    person_id: str


@dataclass
class DeviceResult:
    """Everything stage 1 produces for one device's history."""

    answers: list[Answer] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    #: Every session's final summary: the closed ones, then the one still open.
    sessions: list[dict[str, Any]] = field(default_factory=list)


def recompute_device(events: Iterable[Mapping[str, Any]], rules: SessionRules) -> DeviceResult:
    """Run ``process`` over one device's raw records (``decode_raw``'s shape, timestamps
    as ``format_ts`` spells them) in (timestamp, event_id) order."""
    ordered = sorted(events, key=lambda e: (str(e["timestamp"]), str(e["event_id"])))
    result = DeviceResult()
    identity: DeviceIdentity | None = None
    session: SessionState | None = None
    for record in ordered:
        identity, session, out = process(identity, session, dict(record), rules)
        enriched = out.enriched
        result.answers.append(
            Answer(str(record["event_id"]), enriched["session_id"], str(enriched["person_id"]))
        )
        result.identities.extend(out.identities)
        result.sessions.extend(out.sessions)
    if session is not None:
        result.sessions.append(summary(session))
    return result
