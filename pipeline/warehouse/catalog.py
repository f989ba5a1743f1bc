"""The analysts' catalog: ``warehouse.duckdb``, views over the lake, swapped atomically.

A DuckDB file open for writing cannot be opened by anyone else, so no process keeps the
analysts' file open: the catalog is built in a temporary file, checkpointed, closed, fsynced
and renamed over the old one. Analysts who already opened the old file keep reading it; the
next connection sees the new one. Never a lock error.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipeline.processes import fsync_path
from pipeline.sqlfiles import render_sql
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES

__all__ = ["CATALOG_VIEWS", "publish_catalog"]

#: Oldest DuckDB able to open the catalog: the `duckdb` CLI and BI tools often lag the
#: Python package, and the catalog holds only views, so nothing newer is needed.
_STORAGE_VERSION = "v1.0.0"

#: View name → SQL file under ``sql/catalog``; built in this order.
CATALOG_VIEWS = (
    "identities",
    "sessions",
    "lake_events",
    "person_merges",
    "events",
    "defined_events",
)


def publish_catalog(warehouse_path: Path, lake: Lake) -> Path:
    """Build the catalog's views in a temp file and atomically replace ``warehouse_path``."""
    for table, (_, schema) in TABLES.items():
        lake.ensure_table(table, schema)
    globs = {f"{table}_glob": lake.glob(table) for table in TABLES}
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = warehouse_path.with_name(f".{warehouse_path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        con = duckdb.connect(str(tmp), config={"storage_compatibility_version": _STORAGE_VERSION})
        try:
            for view in CATALOG_VIEWS:
                con.execute(render_sql(f"catalog/{view}", **globs))
            con.execute("CHECKPOINT")
        finally:
            con.close()
        fsync_path(tmp)
        os.replace(tmp, warehouse_path)
        fsync_path(warehouse_path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
        raise
    return warehouse_path
