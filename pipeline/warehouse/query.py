"""Read-only access to the analysts' catalog, as analysts get it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipeline.errors import QueryError

__all__ = ["QueryResult", "connect_readonly", "run_query"]


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of a finished query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def connect_readonly(warehouse_path: Path) -> duckdb.DuckDBPyConnection:
    """Open ``warehouse.duckdb`` read-only, or say clearly why it cannot be."""
    if not warehouse_path.exists():
        raise QueryError(
            f"no warehouse at {warehouse_path}: start `autocap up` (or `autocap "
            "sink`) first, or pass --data-dir"
        )
    try:
        return duckdb.connect(str(warehouse_path), read_only=True)
    except duckdb.Error as exc:
        raise QueryError(f"cannot open {warehouse_path}: {exc}") from None


def run_query(warehouse_path: Path, sql: str, params: list[Any] | None = None) -> QueryResult:
    """Run one SQL statement read-only and fetch everything."""
    con = connect_readonly(warehouse_path)
    try:
        cursor = con.execute(sql, params or [])
        if cursor.description is None:
            return QueryResult([], [])
        return QueryResult([d[0] for d in cursor.description], cursor.fetchall())
    except duckdb.Error as exc:
        raise QueryError(str(exc).splitlines()[0]) from None
    finally:
        con.close()
