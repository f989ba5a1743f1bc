"""``autocap report``: query the warehouse read-only, build the charts, write one HTML file."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from pipeline.definitions import Definitions, load_definitions
from pipeline.demo.site import DEMO_DEFINITIONS
from pipeline.errors import ConfigError, QueryError
from pipeline.report import charts
from pipeline.report.charts import Chart, Table
from pipeline.report.page import Section, render_page
from pipeline.report.segments import segment_charts
from pipeline.settings import Settings
from pipeline.sqlfiles import load_sql
from pipeline.timeutil import format_ts, utc_now
from pipeline.warehouse.funnel import run_funnel
from pipeline.warehouse.query import connect_readonly

__all__ = ["build_sections", "write_report"]


def _query(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> tuple[str, Table]:
    sql = load_sql(f"report/{name}")
    try:
        cursor = con.execute(sql, params or None)
        columns = [d[0] for d in cursor.description or []]
        return sql, Table(columns, cursor.fetchall())
    except duckdb.Error as exc:
        raise QueryError(f"sql/report/{name}.sql: {str(exc).splitlines()[0]}") from None


def _chart(
    con: duckdb.DuckDBPyConnection, name: str, title: str, about: str, draw: Any, **params: Any
) -> Chart:
    sql, table = _query(con, name, **params)
    return Chart(name, title, about, sql, draw(table), table)


def _definitions(settings: Settings) -> tuple[Definitions, Path]:
    """The analyst's definitions, or the demo's example when there is no file (what
    ``autocap up --demo`` runs with then)."""
    path = settings.definitions_path
    if not path.exists():
        path = DEMO_DEFINITIONS
    return load_definitions(path), path


def _funnels(con: duckdb.DuckDBPyConnection, definitions: Definitions) -> list[Chart]:
    out = []
    entries_sql = load_sql("funnel/entries")
    for funnel in definitions.funnels:
        spec = funnel.spec
        result = run_funnel(con, spec).to_json()
        steps = result["steps"]
        table = Table(
            ["step", "count", "conversion_from_first", "dropped", "in_flight"],
            [
                (s["step"], s["count"], s["conversion_from_first"], s["dropped"], s["in_flight"])
                for s in steps
            ],
        )
        command = (
            f"autocap funnel --steps '{','.join(spec.steps)}' --window {funnel_window(spec)}"
            f" --mode {spec.mode} --by {spec.by} --format json"
        )
        first = steps[0]["count"] if steps else 0
        overall = f"{steps[-1]['count'] / first:.0%}" if first else "n/a"
        out.append(
            Chart(
                f"funnel_{funnel.name}",
                f"Funnel {funnel.name}: {' → '.join(spec.steps)}",
                f"Per {spec.by}, within {funnel_window(spec)} of the first step; "
                f"{overall} of those who start finish.",
                f"-- {command}\n-- (also kept as the table funnel_{funnel.name})\n"
                f"-- sql/funnel/entries.sql, then the ordered scan of funnel_scan.py:\n"
                + entries_sql,
                charts.funnel_bars(steps),
                table,
            )
        )
    return out


def funnel_window(spec: Any) -> str:
    """A funnel's window as ``autocap funnel --window`` spells it."""
    ms = int(spec.window_ms)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms // 1000}s"


def build_sections(
    con: duckdb.DuckDBPyConnection, definitions: Definitions, weeks: int, now: datetime
) -> list[Section]:
    """Every section of the report, from the catalog behind ``con``, as of ``now``."""
    activity = [
        _chart(
            con,
            "sessions_per_day",
            "Sessions and people per day",
            "Sessions started and distinct people active, per UTC day.",
            lambda t: charts.line(t, "day", ["sessions", "people"], ["sessions", "people"]),
        ),
        _chart(
            con,
            "top_events",
            "Top events",
            "The 15 most frequent events, autocaptured ($pageview, $click...) and tracked.",
            lambda t: charts.bar(t, "event", ["events", "people"], horizontal=True),
        ),
        _chart(
            con,
            "defined_events",
            "Defined events",
            "Occurrences of each defined event (definitions.yaml), retroactively tagged.",
            lambda t: charts.bar(t, "defined_event", ["events", "people"], horizontal=True),
        ),
        _chart(
            con,
            "retention",
            "Weekly retention",
            "People grouped by the week of their first event (cohort size in brackets): the"
            " share of each cohort active in each later week.",
            charts.retention,
            weeks=weeks,
        ),
    ]
    b2b = [
        _chart(
            con,
            "accounts_by_industry",
            "Accounts by industry and employee band",
            "B2B accounts (the `accounts` view), by their firmographic traits.",
            lambda t: charts.pivot_bar(t, "industry", "employee_band", "accounts"),
        ),
        _chart(
            con,
            "people_by_role",
            "Identified people by role",
            "The `role` trait of each person's profile (the `persons` view).",
            lambda t: charts.bar(t, "role", ["people"]),
        ),
    ]
    b2c = [
        _chart(
            con,
            "purchases_per_day",
            "Purchases per day",
            "`Order Completed` events and their revenue (properties.revenue or amount).",
            lambda t: charts.line(t, "day", ["orders", "revenue"], ["orders", "revenue (EUR)"]),
        )
    ]
    funnels = _funnels(con, definitions)
    return [
        Section("Activity", "Traffic, events and retention across everyone.", activity),
        Section(
            "Funnels",
            "The funnels of definitions.yaml, with the people who dropped at each step.",
            funnels,
            "" if funnels else "No funnels in definitions.yaml: add a `funnels:` section.",
        ),
        Section("B2B accounts", "Companies and the people who visit for them.", b2b),
        Section("B2C shop", "Shoppers' orders and revenue.", b2c),
        Section(
            "Segments, personas and account tiers",
            "The segments of definitions.yaml, how much they overlap, B2B account tiers and"
            " the personas found in the people.",
            segment_charts(con, definitions, now),
        ),
    ]


def write_report(settings: Settings, out: Path, weeks: int = 8) -> Path:
    """Write the report for the warehouse of ``settings`` to ``out`` (atomically)."""
    definitions, definitions_path = _definitions(settings)
    con = connect_readonly(settings.warehouse_path)
    try:
        sections = build_sections(con, definitions, weeks, utc_now())
    finally:
        con.close()
    subtitle = (
        f"Warehouse {settings.warehouse_path} · definitions {definitions_path}"
        f" · generated {format_ts(utc_now())}"
    )
    document = render_page("autocap report", subtitle, sections)
    if out.is_dir():
        raise ConfigError(f"--out: {out} is a directory; give a file name such as report.html")
    if not out.parent.exists():
        raise ConfigError(f"--out: the folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(document, encoding="utf-8")
    os.replace(tmp, out)
    return out
