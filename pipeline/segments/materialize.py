"""Segment tables the materializer keeps: ``segment_<name>`` and ``segment_history``.

- ``segment_<name>``: the current members, one row each (``segment``, ``subject_kind``,
  ``subject_id``, ``as_of``), rewritten every run.
- ``segment_history``: daily snapshots (``snapshot_date``, ``segment``, ``subject_kind``,
  ``subject_id``, ``as_of``). Snapshot rule: every run writes the members of every segment
  under the run's UTC date and replaces that date's earlier snapshot, so a day's snapshot
  is the last run of that day. Days without a run have no snapshot: "who was in the
  segment on D" is the latest snapshot on or before D (``autocap segment diff`` and
  ``history_members`` do exactly that).

A segment that cannot be computed (it names a cohort and the catalog has no
``cohort_membership`` yet) is logged and skipped; its previous table stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.definitions import Definitions
from pipeline.errors import SegmentError
from pipeline.segments.engine import SegmentEngine
from pipeline.sqlfiles import load_sql
from pipeline.warehouse.catalog import published_tables
from pipeline.warehouse.lake import Lake

__all__ = [
    "HISTORY",
    "HISTORY_SCHEMA",
    "SEGMENT_SCHEMA",
    "SegmentMaterializer",
]

log = logging.getLogger(__name__)

HISTORY = "segment_history"
_TS = pa.timestamp("ms", tz="UTC")

SEGMENT_SCHEMA = pa.schema(
    [
        pa.field("segment", pa.string(), nullable=False),
        pa.field("subject_kind", pa.string(), nullable=False),
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("as_of", _TS, nullable=False),
    ]
)

HISTORY_SCHEMA = pa.schema(
    [pa.field("snapshot_date", pa.date32(), nullable=False), *SEGMENT_SCHEMA]
)


@dataclass
class SegmentMaterializer:
    """One pass over ``definitions.segments``: tables, today's snapshot, stale tables."""

    published: Lake
    warehouse_path: Path
    clock: Callable[[], datetime]

    def run(self, definitions: Definitions) -> dict[str, int]:
        """Rewrite every segment's table and today's snapshot; returns name -> size."""
        now = self.clock()
        computed: dict[str, tuple[str, list[str]]] = {}
        if definitions.segments:
            con = duckdb.connect(str(self.warehouse_path), read_only=True)
            try:
                engine = SegmentEngine(con, definitions.segment_rules, now)
                for segment in definitions.segments:
                    try:
                        computed[segment.name] = (segment.of, engine.members(segment))
                    except SegmentError as exc:
                        log.warning("segment skipped: %s", exc)
            finally:
                con.close()
        for name, (kind, ids) in computed.items():
            table = f"segment_{name}"
            self.published.ensure_table(table, SEGMENT_SCHEMA)
            old = self.published.data_files(table)
            self.published.write(table, _rows(SEGMENT_SCHEMA, {name: (kind, ids)}, now))
            self.published.retire(table, old, time.time())
        self._snapshot(computed, now)
        self._drop_stale({s.name for s in definitions.segments})
        return {name: len(ids) for name, (_, ids) in computed.items()}

    def _snapshot(self, computed: dict[str, tuple[str, list[str]]], now: datetime) -> None:
        self.published.ensure_table(HISTORY, HISTORY_SCHEMA)
        if not computed:
            return
        day = now.astimezone(UTC).date()
        live = [str(p) for p in self.published.live_files(HISTORY)]
        con = duckdb.connect()
        try:
            found = con.execute(
                load_sql("segments/history_files"), {"files": live, "day": day}
            ).fetchall()
        finally:
            con.close()
        table = _rows(SEGMENT_SCHEMA, computed, now)
        days = pa.array([day] * table.num_rows, pa.date32())
        self.published.write(HISTORY, table.add_column(0, HISTORY_SCHEMA.field(0), days))
        self.published.retire(HISTORY, [Path(f) for (f,) in found], time.time())

    def _drop_stale(self, names: set[str]) -> None:
        for table in published_tables(self.published):
            stale = table.removeprefix("segment_") not in names
            if table.startswith("segment_") and table != HISTORY and stale:
                self.published.drop_table(table, time.time())


def _rows(schema: pa.Schema, computed: dict[str, tuple[str, list[str]]], now: datetime) -> pa.Table:
    segment, kind, subject = [], [], []
    for name, (of, ids) in computed.items():
        segment += [name] * len(ids)
        kind += [of] * len(ids)
        subject += ids
    return pa.table(
        {
            "segment": pa.array(segment, pa.string()),
            "subject_kind": pa.array(kind, pa.string()),
            "subject_id": pa.array(subject, pa.string()),
            "as_of": pa.array([now] * len(subject), _TS),
        },
        schema=schema,
    )
