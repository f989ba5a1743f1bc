"""Analyst output: a rich table for people, CSV or JSON for scripts."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from pipeline.warehouse.funnel import FunnelResult, StepResult
from pipeline.warehouse.paths import PathsResult
from pipeline.warehouse.query import QueryResult
from pipeline.warehouse.retention import RetentionResult

__all__ = ["print_funnel", "print_paths", "print_result", "print_retention"]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def print_result(result: QueryResult, fmt: str) -> None:
    """Print ``result`` as ``table``, ``csv`` or ``json`` (a list of objects) on stdout."""
    if fmt == "json":
        rows = [dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows]
        sys.stdout.write(orjson.dumps(rows, default=str).decode() + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows([[_plain(v) for v in row] for row in result.rows])
    else:
        table = Table(*result.columns, caption=f"{len(result.rows)} rows")
        for row in result.rows:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        Console().print(table)


_STEP_COLUMNS = (
    "step",
    "count",
    "conversion_from_previous",
    "conversion_from_first",
    "dropped",
    "in_flight",
    "median_time_to_convert_s",
)


def _step_rows(label: str | None, steps: list[StepResult]) -> list[tuple[Any, ...]]:
    return [(label, *(getattr(s, c) for c in _STEP_COLUMNS)) for s in steps]


def print_funnel(result: FunnelResult, fmt: str) -> None:
    """Print a funnel: JSON (``FunnelResult.to_json``), CSV (one row per step and group,
    ``group`` empty for the whole funnel) or tables."""
    if fmt == "json":
        sys.stdout.write(orjson.dumps(result.to_json(), default=str).decode() + "\n")
        return
    groups = [(None, result.steps)] + [(g.value, g.steps) for g in result.breakdown]
    groups += [(g.value, g.steps) for g in result.trend]
    rows = [row for label, steps in groups for row in _step_rows(label, steps)]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(("group", *_STEP_COLUMNS))
        writer.writerows(rows)
        return
    spec = result.spec
    table = Table(
        "group",
        *_STEP_COLUMNS,
        caption=(
            f"{spec.mode} funnel by {spec.by}, window {spec.window_ms / 1000:g} s, as of "
            f"{result.as_of.isoformat()}; time to convert (s): "
            + ", ".join(
                f"{k} {v:.1f}" for k, v in result.time_to_convert_s.items() if v is not None
            )
        ),
    )
    for row in rows:
        table.add_row(
            *("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)
        )
    Console().print(table)


def print_retention(result: RetentionResult, fmt: str) -> None:
    """Print retention: JSON (``RetentionResult.to_json``), CSV (one row per cohort and
    period, cohort ``all`` for the overall row; empty cells for periods not begun) or a
    table of ``retained (rate)`` per period."""
    if fmt == "json":
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
        return
    rows = [*result.cohorts, result.overall]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(("cohort", "people", "period", "retained", "rate"))
        for row in rows:
            for k, (count, rate) in enumerate(zip(row.retained, row.rates, strict=True)):
                writer.writerow((row.cohort, row.people, k, count, rate))
        return
    spec = result.spec
    kind = "unbounded" if spec.unbounded else "N-" + spec.period
    table = Table(
        "cohort",
        "people",
        *(f"{spec.period} {k}" for k in range(spec.periods + 1)),
        caption=(
            f"{kind} retention, {spec.start_event!r} then {spec.return_event!r}, as of "
            f"{result.as_of.isoformat()}"
        ),
    )
    for row in rows:
        cells = [
            "" if count is None else f"{count} ({rate or 0:.1%})"
            for count, rate in zip(row.retained, row.rates, strict=True)
        ]
        table.add_row(row.cohort, str(row.people), *cells)
    Console().print(table)


def print_paths(result: PathsResult, fmt: str) -> None:
    """Print paths: JSON (``PathsResult.to_json``), CSV (path joined with `` > ``) or a
    table."""
    if fmt == "json":
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
        return
    rows = [(" > ".join(p.path), p.count, p.share, p.people) for p in result.paths]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(("path", "count", "share", "people"))
        writer.writerows(rows)
        return
    spec = result.spec
    where = "after" if spec.direction == "next" else "before"
    table = Table(
        "path",
        "count",
        "share",
        "people",
        caption=(
            f"{spec.steps} event(s) {where} {spec.event!r} per {spec.per}: "
            f"{result.occurrences} occurrences"
        ),
    )
    for path, count, share, people in rows:
        table.add_row(path, str(count), f"{share:.1%}", str(people))
    Console().print(table)
