"""Compaction: many small lake files become one, deduplicated, without disturbing readers.

The sink writes a file per batch (one a second under steady traffic), and every query
opens every file, so small files pile up into slow queries. The compactor merges a table's
small files with the table's own dedup rule (``sql/lake/<table>.sql``, the same file the
analysts' views run), writes the result like any lake file (temp, fsync, rename), and only
then retires the inputs.

Readers never see an error or a double count:
- between the merged file's rename and the inputs' removal both exist, and every view
  already collapses duplicates by the same rule;
- a retired input is deleted only after a grace period, so a query that listed the folder
  just before the merge can still open it.
A crash between the two steps leaves both; the next round merges them again (the rule
keeps one copy), so compaction always converges.
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
class _Retired:
    path: Path
    delete_after: float


@dataclass
class Compactor:
    """Merges each lake table's small files; ``run_once`` is one round over all tables."""

    lake: Lake
    policy: CompactionPolicy = field(default_factory=CompactionPolicy)
    clock: Callable[[], float] = time.monotonic
    _retired: dict[Path, _Retired] = field(default_factory=dict)

    def candidates(self, table: str) -> list[Path]:
        """The table's small, live files, oldest first (the names start with a timestamp)."""
        folder = self.lake.table_dir(table)
        files = [
            path
            for path in sorted(folder.glob("*.parquet"))
            if path.name != "_schema.parquet"
            and path not in self._retired
            and path.stat().st_size < self.policy.small_file_bytes
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
        delete_after = self.clock() + self.policy.grace_s
        for path in files:
            self._retired[path] = _Retired(path, delete_after)
        log.info("compacted %d %s files into %d rows", len(files), table, merged.num_rows)
        return len(files)

    def delete_expired(self) -> int:
        """Delete retired files whose grace period is over; returns how many."""
        now = self.clock()
        expired = [r for r in self._retired.values() if r.delete_after <= now]
        for retired in expired:
            retired.path.unlink(missing_ok=True)
            del self._retired[retired.path]
        return len(expired)

    def run_once(self) -> dict[str, int]:
        """One round: delete what expired, then merge every table that needs it."""
        self.delete_expired()
        return {table: self.compact_table(table) for table in TABLES}

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Rounds every ``interval_s`` until ``stop``; an error is logged, not fatal (the
        sink's durability does not depend on compaction)."""
        while not stop.wait(interval_s):
            try:
                self.run_once()
            except (OSError, duckdb.Error) as exc:
                log.warning("compaction round failed, will retry: %s", exc)
