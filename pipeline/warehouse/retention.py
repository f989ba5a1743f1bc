"""Retention: of the people who first did A in a period, how many did B k periods later.

``run_retention(conn, spec)`` runs ``sql/retention/cohorts.sql`` on the catalog. A cohort is
the people whose *first* start event fell in one period (UTC day, or ISO week starting
Monday); period ``k`` of a cohort is ``k`` periods after its own. N-day retention counts a
person in period ``k`` when they did the return event in that period; unbounded retention
when they did it in period ``k`` or any later one. Only returns at or after the person's
first start count. Periods that have not begun at ``as_of`` (``--until``, else now) are
``None``, not 0, and the overall row weighs each period over the cohorts it has begun for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from pipeline.errors import RetentionError
from pipeline.sqlfiles import load_sql
from pipeline.timeutil import parse_ts

__all__ = ["RetentionResult", "RetentionRow", "RetentionSpec", "run_retention"]

PERIODS = ("day", "week")
MAX_PERIODS = 366
_DAY_MS = 86_400_000


def _time(value: Any, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise RetentionError(f"{what} must carry a timezone")
        return value
    parsed = parse_ts(str(value))
    if parsed is None:
        raise RetentionError(f"bad {what} {value!r}: use an ISO-8601 time such as 2026-01-31")
    return parsed


@dataclass(frozen=True)
class RetentionSpec:
    """A validated retention query."""

    start_event: str
    return_event: str
    period: str = "day"
    periods: int = 7
    unbounded: bool = False
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for what, name in (
            ("--start-event", self.start_event),
            ("--return-event", self.return_event),
        ):
            if not isinstance(name, str) or not name.strip():
                raise RetentionError(f"{what} needs an event name")
        if self.period not in PERIODS:
            raise RetentionError(f"unknown --period {self.period!r}: use day or week")
        if not 1 <= self.periods <= MAX_PERIODS:
            raise RetentionError(f"--periods must be 1..{MAX_PERIODS}, got {self.periods}")
        if self.since and self.until and self.since >= self.until:
            raise RetentionError("--since must be before --until")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RetentionSpec:
        """Build from CLI-style keys (the parsed flags)."""
        periods = raw.get("periods", 7)
        try:
            count = int(periods)
        except (TypeError, ValueError):
            raise RetentionError(f"--periods must be a whole number, got {periods!r}") from None
        return cls(
            start_event=str(raw.get("start_event") or "").strip(),
            return_event=str(raw.get("return_event") or "").strip(),
            period=str(raw.get("period") or "day"),
            periods=count,
            unbounded=bool(raw.get("unbounded")),
            since=_time(raw.get("since"), "--since"),
            until=_time(raw.get("until"), "--until"),
        )


@dataclass(frozen=True)
class RetentionRow:
    """One cohort (or ``all``): its size, then per period ``k = 0..N`` the people retained
    and their share of the cohort (``None`` for periods not begun yet)."""

    cohort: str
    people: int
    retained: list[int | None]
    rates: list[float | None]


@dataclass(frozen=True)
class RetentionResult:
    """Everything ``autocap retention`` prints; ``to_json()`` is the ``--format json`` shape."""

    spec: RetentionSpec
    as_of: datetime
    cohorts: list[RetentionRow]
    overall: RetentionRow

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        spec = self.spec
        return {
            "start_event": spec.start_event,
            "return_event": spec.return_event,
            "period": spec.period,
            "periods": spec.periods,
            "unbounded": spec.unbounded,
            "as_of": self.as_of.isoformat(),
            "cohorts": [row.__dict__ for row in self.cohorts],
            "overall": self.overall.__dict__,
        }


def run_retention(
    conn: duckdb.DuckDBPyConnection, spec: RetentionSpec, now: datetime | None = None
) -> RetentionResult:
    """Run ``spec`` on the catalog behind ``conn`` (read-only is enough)."""
    as_of = spec.until or now or datetime.now(UTC)
    params = {
        "start_event": spec.start_event,
        "return_event": spec.return_event,
        "period": spec.period,
        "periods": spec.periods,
        "unbounded": spec.unbounded,
        "since_ms": _ms(spec.since),
        "until_ms": _ms(spec.until),
    }
    try:
        rows = conn.sql(load_sql("retention/cohorts"), params=params).fetchall()
    except duckdb.CatalogException as exc:
        raise RetentionError(
            f"the warehouse has no events view ({str(exc).splitlines()[0]})"
        ) from None
    n = spec.periods + 1
    sizes: dict[int, int] = {}
    counts: dict[int, list[int]] = {}
    for cohort, people, k, retained in rows:
        sizes[cohort] = people
        counts.setdefault(cohort, [0] * n)
        if k is not None:
            counts[cohort][k] = retained
    as_of_ms = _ms(as_of) or 0
    cohorts = []
    total_people, total_retained = [0] * n, [0] * n
    for cohort in sorted(sizes):
        begun = [_period_start_ms(cohort + k, spec.period) < as_of_ms for k in range(n)]
        retained = [c if b else None for c, b in zip(counts[cohort], begun, strict=True)]
        cohorts.append(_row(_label(cohort, spec.period), sizes[cohort], retained))
        for k in range(n):
            if begun[k]:
                total_people[k] += sizes[cohort]
                total_retained[k] += counts[cohort][k]
    overall = RetentionRow(
        "all",
        sum(sizes.values()),
        [r if p else None for r, p in zip(total_retained, total_people, strict=True)],
        [_rate(r, p) if p else None for r, p in zip(total_retained, total_people, strict=True)],
    )
    return RetentionResult(spec, as_of, cohorts, overall)


def _row(label: str, people: int, retained: list[int | None]) -> RetentionRow:
    return RetentionRow(
        label, people, retained, [None if r is None else _rate(r, people) for r in retained]
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _ms(when: datetime | None) -> int | None:
    if when is None:
        return None
    return -((datetime(1970, 1, 1, tzinfo=UTC) - when) // timedelta(milliseconds=1))


def _period_start_ms(period: int, kind: str) -> int:
    return (period * 7 - 3 if kind == "week" else period) * _DAY_MS


def _label(period: int, kind: str) -> str:
    start = datetime.fromtimestamp(_period_start_ms(period, kind) / 1000, UTC)
    return start.date().isoformat()
