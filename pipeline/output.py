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

from pipeline.warehouse.query import QueryResult

__all__ = ["print_result"]


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
