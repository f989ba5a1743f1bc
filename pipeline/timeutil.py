"""Timezone-aware time helpers; every timestamp autocap writes is UTC with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_ts", "parse_ts", "utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware (only at boundaries; rules take ``now`` explicitly)."""
    return datetime.now(UTC)


def format_ts(moment: datetime) -> str:
    """``2026-11-23T10:00:00.123Z``: the one spelling on every topic and in every file."""
    if moment.tzinfo is not UTC:  # the common case skips the conversion (hot path)
        if moment.tzinfo is None:
            raise ValueError("naive datetime: autocap only handles timezone-aware times")
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_ts(text: object) -> datetime | None:
    """Parse an ISO-8601 timestamp; naive ones are taken as UTC. None if it does not parse."""
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # e.g. 0001-01-01T00:00:00+05:00 leaves the range
        return None
