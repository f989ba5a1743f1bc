"""Paths: what people do right after (or right before) an event.

``run_paths(conn, spec)`` runs ``sql/paths/paths.sql``: every occurrence of the event gives
one path, the ``steps`` events that follow it (``next``) or precede it (``previous``,
nearest first) within the same session (``per="session"``) or the person's whole history
(``per="person"``). A path cut short ends with ``(end)`` (or ``(start)``). Paths are
counted per occurrence; ``share`` is of all occurrences, ``people`` the distinct people
who took the path. Repeated events (two page views in a row) are kept as they happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from pipeline.errors import PathsError
from pipeline.sqlfiles import load_sql
from pipeline.timeutil import parse_ts

__all__ = ["PathRow", "PathsResult", "PathsSpec", "run_paths"]

DIRECTIONS = ("next", "previous")
SCOPES = ("session", "person")
MAX_STEPS = 10
MAX_TOP = 1000


def _time(value: Any, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise PathsError(f"{what} must carry a timezone")
        return value
    parsed = parse_ts(str(value))
    if parsed is None:
        raise PathsError(f"bad {what} {value!r}: use an ISO-8601 time such as 2026-01-31")
    return parsed


def _count(value: Any, what: str, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PathsError(f"{what} must be a whole number, got {value!r}") from None
    if not 1 <= number <= high:
        raise PathsError(f"{what} must be 1..{high}, got {number}")
    return number


@dataclass(frozen=True)
class PathsSpec:
    """A validated paths query."""

    event: str
    direction: str = "next"
    steps: int = 1
    top: int = 10
    per: str = "session"
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if not self.event.strip():
            raise PathsError("--from needs an event name")
        if self.direction not in DIRECTIONS:
            raise PathsError(f"unknown --direction {self.direction!r}: use next or previous")
        if self.per not in SCOPES:
            raise PathsError(f"unknown --per {self.per!r}: use session or person")
        _count(self.steps, "--steps", MAX_STEPS)
        _count(self.top, "--top", MAX_TOP)
        if self.since and self.until and self.since >= self.until:
            raise PathsError("--since must be before --until")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PathsSpec:
        """Build from CLI-style keys (the parsed flags)."""
        return cls(
            event=str(raw.get("event") or "").strip(),
            direction=str(raw.get("direction") or "next"),
            steps=_count(raw.get("steps", 1), "--steps", MAX_STEPS),
            top=_count(raw.get("top", 10), "--top", MAX_TOP),
            per=str(raw.get("per") or "session"),
            since=_time(raw.get("since"), "--since"),
            until=_time(raw.get("until"), "--until"),
        )


@dataclass(frozen=True)
class PathRow:
    """One distinct path and how often it was taken."""

    path: list[str]
    count: int
    share: float
    people: int


@dataclass(frozen=True)
class PathsResult:
    """Everything ``autocap paths`` prints; ``to_json()`` is the ``--format json`` shape."""

    spec: PathsSpec
    occurrences: int
    paths: list[PathRow]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        spec = self.spec
        return {
            "from": spec.event,
            "direction": spec.direction,
            "steps": spec.steps,
            "per": spec.per,
            "occurrences": self.occurrences,
            "paths": [p.__dict__ for p in self.paths],
        }


def run_paths(conn: duckdb.DuckDBPyConnection, spec: PathsSpec) -> PathsResult:
    """Run ``spec`` on the catalog behind ``conn`` (read-only is enough)."""
    params = {
        "event": spec.event,
        "direction": spec.direction,
        "steps": spec.steps,
        "top": spec.top,
        "per": spec.per,
        "since": spec.since,
        "until": spec.until,
    }
    try:
        rows = conn.sql(load_sql("paths/paths"), params=params).fetchall()
    except duckdb.CatalogException as exc:
        raise PathsError(f"the warehouse has no events view ({str(exc).splitlines()[0]})") from None
    total = int(rows[0][3]) if rows else 0
    paths = [PathRow(list(p), int(c), round(c / total, 6), int(n)) for p, c, n, _ in rows]
    return PathsResult(spec, total, paths)
