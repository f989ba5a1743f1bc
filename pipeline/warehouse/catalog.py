"""The analysts' catalog: ``warehouse.duckdb``, views over the lake, swapped atomically.

A DuckDB file open for writing cannot be opened by anyone else, so no process keeps the
analysts' file open: the catalog is built in a temporary file, checkpointed, closed, fsynced
and renamed over the old one. Analysts who already opened the old file keep reading it; the
next connection sees the new one. Never a lock error.

The views name the lake's live files explicitly (``Lake.live_files``), so the catalog is
republished when files appear (the sink, at most every ``AUTOCAP_CATALOG_REFRESH_S``) or
are merged away (the compactor).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import duckdb

from pipeline.processes import fsync_path
from pipeline.sqlfiles import render_sql
from pipeline.warehouse.event_index import ensure_index_table, indexed_split
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import DEFINED_TAGS_SCHEMA, TABLES

__all__ = [
    "CATALOG_VIEWS",
    "CatalogPublisher",
    "events_views",
    "funnel_views",
    "publish_catalog",
    "published_lake",
    "published_tables",
]

#: Oldest DuckDB able to open the catalog: the `duckdb` CLI and BI tools often lag the
#: Python package, and the catalog holds only views, so nothing newer is needed.
_STORAGE_VERSION = "v1.0.0"

#: View name → SQL file under ``sql/catalog``; built in this order, after the lake views
#: (``lake_<table>``, from ``sql/lake``: each table's rows deduplicated; and
#: ``lake_events_raw``, every copy, for engines that filter before deduplicating).
CATALOG_VIEWS = (
    "identities",
    "sessions",
    "person_merges",
    "person_accounts",
    "events",
    "effective_tags",
    "defined_events",
    "persons",
    "accounts",
    "cohort_history",
    "cohort_membership",
)


def published_lake(lake: Lake) -> Lake:
    """Where the materializer's tables live: ``published/`` next to the lake."""
    return Lake(lake.root.with_name("published"))


def published_tables(published: Lake) -> list[str]:
    """The published tables analysts see (folders with a schema file, not dropped)."""
    if not published.root.exists():
        return []
    return sorted(
        folder.name
        for folder in published.root.iterdir()
        if (folder / "_schema.parquet").exists() and not published.is_dropped(folder.name)
    )


def lake_views(
    con: duckdb.DuckDBPyConnection, lake: Lake, tables: Iterable[str] = tuple(TABLES)
) -> None:
    """Create ``lake_<table>`` (and ``lake_events_raw``) over each table's live files, and
    with ``events`` the events index views (``lake_events_index``, ``lake_events_unindexed``)."""
    for table in tables:
        if table == "events":
            events_views(con, lake)
            continue
        files = [str(path) for path in lake.live_files(table)]
        con.execute(render_sql(f"lake/{table}", source=files))


def events_views(
    con: duckdb.DuckDBPyConnection, lake: Lake, files: Sequence[Path] | None = None
) -> None:
    """The events views (``lake_events_raw``, ``lake_events``, ``lake_events_metadata``) and
    the events index views over the live events files, or over ``files`` alone (the
    materializer looking at new files only)."""
    schema_file, *live = lake.live_files("events")
    chosen = live if files is None else list(files)
    con.execute(render_sql("lake/events", source=[str(p) for p in (schema_file, *chosen)]))
    ensure_index_table(lake)
    indexed, unindexed = indexed_split(lake, schema_file, chosen)
    index, recent = [str(p) for p in indexed], [str(p) for p in unindexed]
    con.execute(render_sql("lake/events_index", index=index, unindexed=recent))


def published_view(con: duckdb.DuckDBPyConnection, table: str, files: Iterable[Path]) -> None:
    """Create the view named ``table`` over the given files of a published table."""
    sql = render_sql("published/table", identifiers={"name": table}, source=map(str, files))
    con.execute(sql)


def funnel_views(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """Create in ``con`` only the catalog's views the funnel engine reads, over the lake
    as it is now: the materializer refreshes its funnel tables from these without
    publishing (and without binding the views it does not need)."""
    lake_views(con, lake, ("events", "identities"))
    published = published_lake(lake)
    published.ensure_table("defined_event_tags", DEFINED_TAGS_SCHEMA)
    published_view(con, "defined_event_tags", published.live_files("defined_event_tags"))
    for view in ("identities", "person_merges", "person_accounts", "effective_tags"):
        con.execute(render_sql(f"catalog/{view}"))


def publish_catalog(warehouse_path: Path, lake: Lake) -> Path:
    """Build the catalog's views in a temp file and atomically replace ``warehouse_path``.

    Publishers in several processes (``autocap up``, the sink, the compactor) take turns
    under a lock file, so the newest listing of the lake always lands last.
    """
    for table, (_, schema) in TABLES.items():
        lake.ensure_table(table, schema)
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    lock = warehouse_path.with_name(f".{warehouse_path.name}.lock")
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        _build(warehouse_path, lake)
    return warehouse_path


def _build(warehouse_path: Path, lake: Lake) -> None:
    tmp = warehouse_path.with_name(f".{warehouse_path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        con = duckdb.connect(str(tmp), config={"storage_compatibility_version": _STORAGE_VERSION})
        try:
            lake_views(con, lake)
            published = published_lake(lake)
            published.ensure_table("defined_event_tags", DEFINED_TAGS_SCHEMA)
            for table in published_tables(published):
                published_view(con, table, published.live_files(table))
            for view in CATALOG_VIEWS:
                con.execute(render_sql(f"catalog/{view}"))
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


class CatalogPublisher:
    """Republishes the catalog when the lake changed, at most every ``min_interval_s``.

    Thread-safe: the sink's loop and the compactor's thread share one.
    """

    def __init__(
        self,
        warehouse_path: Path,
        lake: Lake,
        min_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.warehouse_path = warehouse_path
        self.lake = lake
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = False
        self._last = -float("inf")

    def changed(self) -> None:
        """New files are durable: the next ``publish_if_due`` lists them."""
        self._changed = True

    def publish_if_due(self) -> bool:
        """Publish if something changed and the last publish is old enough."""
        if not self._changed or self._clock() - self._last < self.min_interval_s:
            return False
        self.publish()
        return True

    def publish(self) -> None:
        """Publish now."""
        with self._lock:
            self._changed = False
            publish_catalog(self.warehouse_path, self.lake)
            self._last = self._clock()
