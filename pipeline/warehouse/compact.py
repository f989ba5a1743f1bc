"""Compaction: many small lake files become one, deduplicated, without disturbing readers.

The sink writes a file per batch (one a second under steady traffic), and every query
opens every file, so small files pile up into slow queries. The compactor merges a table's
small files with the table's own dedup rule (``sql/lake/<table>.sql``, the same file the
analysts' views run), writes the result like any lake file (temp, fsync, rename), retires
the inputs and republishes the catalog, which from then on names the merged file instead.

Readers never see an error or a double count:
- until the catalog is republished it names only the inputs; after, only the merged file;
- a retired input is deleted only after a grace period, so a query that started on the
  previous catalog can still open it.
A crash between writing and retiring leaves both live; every view collapses the duplicates
by the same rule, and the next round merges them again, so compaction always converges.

Each round also indexes the events files that have no index yet (``event_index``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.sqlfiles import render_sql
from pipeline.warehouse.catalog import CatalogPublisher
from pipeline.warehouse.event_index import index_events
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES

__all__ = ["CompactionPolicy", "Compactor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactionPolicy:
    """When files are small enough to merge, and how many make a merge worth it."""

    small_file_bytes: int = 32 * 1024 * 1024
    min_files: int = 8
    max_files: int = 500  # one merge reads at most this many files
    grace_s: float = 120.0  # retired files stay readable this long


@dataclass
class Compactor:
    """Merges each lake table's small files; ``run_once`` is one round over all tables."""

    lake: Lake
    publisher: CatalogPublisher
    policy: CompactionPolicy = field(default_factory=CompactionPolicy)
    clock: Callable[[], float] = time.time  # wall clock: retirements outlive the process

    def candidates(self, table: str) -> list[Path]:
        """The table's small live files, oldest first."""
        retired = self.lake.retired(table)
        files = [
            path
            for path in self.lake.data_files(table)
            if path.name not in retired and path.stat().st_size < self.policy.small_file_bytes
        ]
        return files[: self.policy.max_files]

    def compact_table(self, table: str) -> int:
        """Merge ``table``'s small files if there are enough; returns files merged."""
        files = self.candidates(table)
        if len(files) < self.policy.min_files:
            return 0
        schema = TABLES[table][1]
        con = duckdb.connect()
        try:
            con.execute(render_sql(f"lake/{table}", source=[str(p) for p in files]))
            merged = con.table(f"lake_{table}").to_arrow_table()
        finally:
            con.close()
        # The lake's own types (DuckDB would hand back its renditions of some of them).
        self.lake.write(table, merged.select(schema.names).cast(schema))
        self.lake.retire(table, files, self.clock())
        log.info("compacted %d %s files into %d rows", len(files), table, merged.num_rows)
        return len(files)

    def delete_expired(self) -> int:
        """Delete retired files whose grace period is over; returns how many."""
        older_than = self.clock() - self.policy.grace_s
        return sum(self.lake.delete_retired(table, older_than) for table in TABLES)

    def run_once(self) -> dict[str, int]:
        """One round: delete what expired, merge every table that needs it, index the events
        files not indexed yet, and publish the catalog if anything changed."""
        self.delete_expired()
        merged = {table: self.compact_table(table) for table in TABLES}
        indexed = index_events(self.lake)
        if any(merged.values()) or indexed:
            self.publisher.publish()
        return merged

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Rounds every ``interval_s`` until ``stop``; an error is logged, not fatal (the
        sink's durability does not depend on compaction)."""
        while not stop.wait(interval_s):
            try:
                self.run_once()
            except (OSError, duckdb.Error) as exc:
                log.warning("compaction round failed, will retry: %s", exc)
