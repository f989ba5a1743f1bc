"""Sessionization: the one place that says when a session starts and ends.

Rules (per device, i.e. per anonymous_id, in event time):

- A session ends after ``inactivity`` without events, or once it has lasted ``max_length``
  (the next event then starts a new session even without a pause).
- ``session_id`` is derived from the device and the session's first event, so the stream
  and a batch recomputation over the same events give the same ids.
- Out-of-order events: an event earlier than the open session's last event joins the open
  session when it is within ``inactivity`` of the session's start (the start moves back);
  an event older than that belongs to a session already summarised and is marked late
  (``session_id`` None, flag ``late_event``) rather than rewriting history in the stream;
  the batch recomputation places it. In-order input gives exactly the batch answer; events
  at the same instant are in order when they come in event_id order (the batch tie-break).

Pure: ``sessionize(state, event, rules) -> (state, outputs)``, no clock, no Kafka.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pipeline.timeutil import format_ts, parse_ts
from pipeline.useragent import parse_agent

__all__ = [
    "SessionRules",
    "SessionState",
    "session_id_for",
    "sessionize",
    "sessionize_all",
    "summarize_idle",
    "summary",
]


@dataclass(frozen=True)
class SessionRules:
    """How long a pause ends a session, and how long a session may last."""

    inactivity: timedelta = timedelta(minutes=30)
    max_length: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class SessionState:
    """A device's open session (what the Faust table stores per anonymous_id)."""

    anonymous_id: str
    session_id: str
    seq: int  # 1 for the device's first session, 2 for the next...
    start: datetime
    last: datetime
    events: int
    pageviews: int
    entry_url: str | None
    exit_url: str | None
    referrer: str | None
    campaign: Mapping[str, Any] | None
    user_agent: str | None
    summarized: bool = False  # its summary went out (by the idle timer) since it last grew
    # The last few events placed on this device: (event_id, session_id, seq, person_id).
    # A replay after a crash re-delivers events whose effect is already in this state;
    # recognising them keeps the answer exactly the batch's (see stream/enrich.process).
    recent: tuple[tuple[str, str | None, int | None, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form for the table's changelog."""
        return {
            **self.__dict__,
            "start": format_ts(self.start),
            "last": format_ts(self.last),
            "campaign": dict(self.campaign) if self.campaign else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionState:
        """Inverse of ``to_json``."""
        start, last = parse_ts(data["start"]), parse_ts(data["last"])
        assert start is not None and last is not None
        recent = tuple(tuple(item) for item in data.get("recent", ()))
        return cls(**{**data, "start": start, "last": last, "recent": recent})


def session_id_for(anonymous_id: str, first_event_id: str) -> str:
    """Deterministic id of the session that ``first_event_id`` opens on ``anonymous_id``."""
    digest = hashlib.blake2b(f"{anonymous_id}\x1f{first_event_id}".encode(), digest_size=16)
    return digest.hexdigest()


def _page(event: Mapping[str, Any]) -> Mapping[str, Any]:
    page = (event.get("context") or {}).get("page")
    return page if isinstance(page, dict) else {}


def _is_pageview(event: Mapping[str, Any]) -> bool:
    return event.get("type") == "page" or event.get("event") == "$pageview"


def _open(anonymous_id: str, event: Mapping[str, Any], at: datetime, seq: int) -> SessionState:
    page = _page(event)
    context = event.get("context") or {}
    return SessionState(
        anonymous_id=anonymous_id,
        session_id=session_id_for(anonymous_id, str(event["event_id"])),
        seq=seq,
        start=at,
        last=at,
        events=1,
        pageviews=1 if _is_pageview(event) else 0,
        entry_url=page.get("url"),
        exit_url=page.get("url"),
        referrer=page.get("referrer") or None,
        campaign=context.get("campaign") if isinstance(context.get("campaign"), dict) else None,
        user_agent=context.get("userAgent"),
    )


def summary(state: SessionState) -> dict[str, Any]:
    """The record emitted to ``autocap.sessions`` for a session (latest version wins)."""
    return {
        "session_id": state.session_id,
        "anonymous_id": state.anonymous_id,
        "seq": state.seq,
        "start": format_ts(state.start),
        "end": format_ts(state.last),
        "duration_s": (state.last - state.start).total_seconds(),
        "events": state.events,
        "pageviews": state.pageviews,
        "entry_url": state.entry_url,
        "exit_url": state.exit_url,
        "referrer": state.referrer,
        "campaign": dict(state.campaign) if state.campaign else None,
        "user_agent": state.user_agent,
        **parse_agent(state.user_agent)._asdict(),
    }


def sessionize(
    state: SessionState | None,
    event: Mapping[str, Any],
    rules: SessionRules,
    device: str | None = None,
) -> tuple[SessionState | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """Place one event: ``(new state, the event's session fields, closed session summaries)``.

    ``event`` needs ``event_id``, ``anonymous_id`` and ``timestamp`` (ISO-8601). The session
    fields are ``{"session_id", "session_seq"}``, or ``{"session_id": None, ...}`` plus the
    ``late_event`` flag for an event too old for the open session.
    """
    at = parse_ts(event["timestamp"])
    anonymous_id = device if device is not None else str(event["anonymous_id"])
    if at is None:
        raise ValueError(f"event {event.get('event_id')} has no valid timestamp")
    if state is None:
        new = _open(anonymous_id, event, at, seq=1)
        return new, {"session_id": new.session_id, "session_seq": new.seq}, []
    if at < state.last:  # out of order
        if at < state.start - rules.inactivity or state.last - at > rules.max_length:
            return state, {"session_id": None, "session_seq": None, "late": True}, []
        page = _page(event)
        moved = replace(
            state,
            events=state.events + 1,
            summarized=False,
            pageviews=state.pageviews + _is_pageview(event),
            start=min(state.start, at),
            entry_url=page.get("url", state.entry_url) if at < state.start else state.entry_url,
        )
        return moved, {"session_id": moved.session_id, "session_seq": moved.seq}, []
    if at - state.last > rules.inactivity or at - state.start >= rules.max_length:
        closed = summary(state)
        new = _open(anonymous_id, event, at, seq=state.seq + 1)
        return new, {"session_id": new.session_id, "session_seq": new.seq}, [closed]
    page = _page(event)
    grown = replace(
        state,
        last=at,
        events=state.events + 1,
        summarized=False,
        pageviews=state.pageviews + _is_pageview(event),
        exit_url=page.get("url", state.exit_url),
    )
    return grown, {"session_id": grown.session_id, "session_seq": grown.seq}, []


def summarize_idle(
    state: SessionState, now: datetime, rules: SessionRules
) -> tuple[SessionState, dict[str, Any] | None]:
    """The idle timer's rule: a session quiet for ``inactivity`` (by ``now``) is summarised
    once, without waiting for the device's next event. The state stays, so a late event
    within the rules still joins it (and its summary is emitted again, updated)."""
    if state.summarized or now - state.last <= rules.inactivity:
        return state, None
    return replace(state, summarized=True), summary(state)


def sessionize_all(
    events: Iterable[Mapping[str, Any]], rules: SessionRules
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Batch path: every event's ``(event_id, session fields)`` and, at the end of each
    device's history, its open session's summary under the key ``"$session"``.

    Events are processed per device in (timestamp, event_id) order, which is the order in
    which the stream gives the same answer.
    """
    by_device: dict[str, list[Mapping[str, Any]]] = {}
    for event in events:
        by_device.setdefault(str(event["anonymous_id"]), []).append(event)
    for device_events in by_device.values():
        device_events.sort(key=lambda e: (parse_ts(e["timestamp"]), str(e["event_id"])))
        state: SessionState | None = None
        for event in device_events:
            state, fields, closed = sessionize(state, event, rules)
            for done in closed:
                yield "$session", done
            yield str(event["event_id"]), fields or {}
        if state is not None:
            yield "$session", summary(state)
