"""Reading segment membership back from the catalog: the materialized ``segment_<name>``
table and the daily snapshots in ``segment_history``."""

from __future__ import annotations

from datetime import date

import duckdb

from pipeline.errors import SegmentError
from pipeline.sqlfiles import load_sql, render_sql

__all__ = ["materialized_members", "members_on", "sizes"]


def _require(con: duckdb.DuckDBPyConnection, table: str) -> None:
    ((found,),) = con.execute(load_sql("segments/has_view"), {"name": table}).fetchall()
    if not found:
        raise SegmentError(
            f"the warehouse has no {table} yet: run `autocap materialize --once` (or keep"
            " `autocap up` running) after adding the segment"
        )


def materialized_members(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """Members of ``segment_<name>`` as the materializer last wrote it."""
    table = f"segment_{name}"
    _require(con, table)
    sql = render_sql("segments/materialized_members", identifiers={"table": table})
    return [str(r[0]) for r in con.execute(sql).fetchall()]


def members_on(con: duckdb.DuckDBPyConnection, name: str, day: date) -> tuple[date, list[str]]:
    """Who was in the segment on ``day``: the latest snapshot on or before it, and its date."""
    _require(con, "segment_history")
    params = {"segment": name, "day": day}
    ((snapshot,),) = con.execute(load_sql("segments/history_snapshot"), params).fetchall()
    if snapshot is None:
        raise SegmentError(f"segment {name!r} has no snapshot on or before {day.isoformat()}")
    rows = con.execute(load_sql("segments/history_members"), {**params, "day": snapshot})
    return snapshot, [str(r[0]) for r in rows.fetchall()]


def sizes(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[date, int]]:
    """The segment's size at each snapshot, oldest first (empty without history)."""
    ((found,),) = con.execute(load_sql("segments/has_view"), {"name": "segment_history"}).fetchall()
    if not found:
        return []
    rows = con.execute(load_sql("segments/history_sizes"), {"segment": name}).fetchall()
    return [(d, int(n)) for d, n in rows]
