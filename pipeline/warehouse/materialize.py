"""The materializer: tables built from the lake and ``definitions.yaml``, published for
analysts next to the lake's views.

- ``defined_event_tags``: every event, tagged with the defined events it is an occurrence
  of, by the same ``Definitions.defined_events`` stage 1 runs, so a definition added or
  changed later applies to all history. Incremental: a run tags only events not yet
  tagged under the current definitions version; a definitions change (or ``--full``)
  re-tags everything.
- ``funnel_<name>``: each funnel in ``definitions.yaml``, one row per step. The first run
  (and ``--full``, a definitions change, a changed funnel) computes every person's funnel
  row (``funnel_state``); later runs recompute only the people with events in lake files
  new since the last run or whose identity merges changed, and re-sum.
- ``segment_<name>`` and ``segment_history``: see ``pipeline.segments.materialize``
  (recomputed in full every run).

Tags and funnels are incremental by lake file: the files listed at the start of the last run
are known (held in memory; a restarted materializer starts with a full pass). Files only
appear whole, and compaction writes its merged events to new files, so a file not seen before
holds every event that can have changed.

Published tables live in ``<data_dir>/published/<table>/`` as lake files (atomic, fsynced)
and reach analysts through the catalog, which names their live files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from pipeline.definitions import Definitions, NamedFunnel
from pipeline.segments.materialize import SegmentMaterializer
from pipeline.sqlfiles import load_sql
from pipeline.timeutil import utc_now
from pipeline.warehouse.catalog import (
    CatalogPublisher,
    events_views,
    funnel_views,
    lake_views,
    published_tables,
    published_view,
)
from pipeline.warehouse.funnel_state import FunnelState, Refresh, changed_merges, person_merges
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import DEFINED_TAGS_SCHEMA, FUNNEL_TABLE_SCHEMA

__all__ = ["MaterializeReport", "Materializer"]

log = logging.getLogger(__name__)

_TAGS = "defined_event_tags"
_BATCH_ROWS = 50_000
_MAX_TAG_FILES = 32  # more incremental files than this: rewrite them as one


@dataclass
class MaterializeReport:
    """What one run did."""

    full: bool
    events_tagged: int = 0
    funnels: dict[str, int] = field(default_factory=dict)  # name -> persons at step 1
    seconds: float = 0.0
    tag_seconds: float = 0.0  # of which tagging events (incremental)
    segments: dict[str, int] = field(default_factory=dict)  # name -> members
    funnels_recomputed: dict[str, int | None] = field(default_factory=dict)  # None: all


@dataclass
class Materializer:
    """Builds the published tables; ``run_once`` is one pass."""

    lake: Lake
    published: Lake
    publisher: CatalogPublisher
    warehouse_path: Path
    definitions: Callable[[], Definitions]
    grace_s: float = 120.0  # replaced files stay readable this long (as in compaction)
    clock: Callable[[], datetime] = utc_now
    # Incremental state: lake files seen by the last run, its person merges, per funnel.
    _seen: frozenset[Path] | None = field(default=None, init=False, repr=False)
    _merges: Any = field(default=None, init=False, repr=False)
    _tagged_version: str | None = field(default=None, init=False, repr=False)
    _states: dict[str, FunnelState] = field(default_factory=dict, init=False, repr=False)
    _entries: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)

    def run_once(self, full: bool = False) -> MaterializeReport:
        """Tag new (or, with ``full``, all) events, rebuild the funnels, publish."""
        started = time.perf_counter()
        definitions = self.definitions()
        self._delete_expired()
        self.published.ensure_table(_TAGS, DEFINED_TAGS_SCHEMA)
        report = MaterializeReport(full=full)
        files = frozenset(self.lake.live_files("events")[1:])  # not the schema file
        new = None if full or self._seen is None else sorted(files - self._seen)
        report.events_tagged = self._tag(definitions, full, new)
        report.tag_seconds = time.perf_counter() - started
        self._funnels(definitions, new, report)
        self._drop_stale_funnels({f.name for f in definitions.funnels})
        report.segments = SegmentMaterializer(self.published, self.warehouse_path, self.clock).run(
            definitions
        )
        self.publisher.publish()
        self._seen, self._tagged_version = files, definitions.events_version
        report.seconds = time.perf_counter() - started
        return report

    def _tag(self, definitions: Definitions, full: bool, new: list[Path] | None) -> int:
        tags = self.published.live_files(_TAGS)
        con = duckdb.connect()
        try:
            published_view(con, _TAGS, tags)
            if new is not None and self._tagged_version is not None:
                current: str | None = self._tagged_version  # this process tagged last
            else:
                ((version,),) = con.execute(load_sql("materialize/tags_version")).fetchall()
                current = None if version is None else str(version)
            rebuild = full or (current is not None and current != definitions.events_version)
            if rebuild:  # compare against no tags (the schema file alone): everything is new
                published_view(con, _TAGS, tags[:1])
            if rebuild or new is None:
                lake_views(con, self.lake)
            else:  # every older file's events are tagged: look at the new ones only
                events_views(con, self.lake, new)
            untagged = con.sql(
                load_sql("materialize/untagged_events"),
                params={"version": definitions.events_version},
            ).to_arrow_reader(_BATCH_ROWS)
            written = 0
            now = self.clock()
            for batch in untagged or ():
                tagged = _tag_batch(batch, definitions, now)
                if tagged.num_rows:
                    self.published.write(_TAGS, tagged)
                    written += tagged.num_rows
        finally:
            con.close()
        if rebuild:
            self.published.retire(_TAGS, tags[1:], time.time())  # all but the schema file
        elif len(self.published.live_files(_TAGS)) > _MAX_TAG_FILES:
            self._merge_tags()
        return written

    def _merge_tags(self) -> None:
        live = self.published.live_files(_TAGS)
        con = duckdb.connect()
        try:
            published_view(con, _TAGS, live)
            merged = con.table(_TAGS).to_arrow_table()
        finally:
            con.close()
        schema = DEFINED_TAGS_SCHEMA
        self.published.write(_TAGS, merged.select(schema.names).cast(schema))
        self.published.retire(_TAGS, live[1:], time.time())  # all but the schema file

    def _funnels(
        self, definitions: Definitions, new: list[Path] | None, report: MaterializeReport
    ) -> None:
        con = duckdb.connect()  # the catalog's views over the lake and the new tags, unpublished
        try:
            funnel_views(con, self.lake)
            merges = person_merges(con)
            refresh = Refresh(
                con,
                self.lake,
                definitions.events_version,
                frozenset(d.name for d in definitions.events),
                new,
                None if new is None else changed_merges(self._merges, merges),
                self._entries,
            )
            states = {}
            for funnel in definitions.funnels:
                state, recomputed = refresh.state(funnel.spec, self._states.get(funnel.name))
                states[funnel.name] = state
                report.funnels_recomputed[funnel.name] = recomputed
                report.funnels[funnel.name] = self._funnel(funnel, state)
        finally:
            con.close()
        self._states, self._merges, self._entries = states, merges, refresh.next_cache

    def _funnel(self, funnel: NamedFunnel, state: FunnelState) -> int:
        as_of = funnel.spec.until or self.clock()
        steps = state.steps(as_of)
        rows = [
            {
                "step_index": i + 1,
                "step": step.step,
                "count": step.count,
                "conversion_from_previous": step.conversion_from_previous,
                "conversion_from_first": step.conversion_from_first,
                "dropped": step.dropped,
                "in_flight": step.in_flight,
                "median_time_to_convert_s": step.median_time_to_convert_s,
                "as_of": as_of,
            }
            for i, step in enumerate(steps)
        ]
        table = f"funnel_{funnel.name}"
        self.published.ensure_table(table, FUNNEL_TABLE_SCHEMA)
        old = self.published.data_files(table)
        self.published.write(table, pa.Table.from_pylist(rows, schema=FUNNEL_TABLE_SCHEMA))
        self.published.retire(table, old, time.time())
        return steps[0].count if steps else 0

    def _drop_stale_funnels(self, names: set[str]) -> None:
        for table in published_tables(self.published):
            if table.startswith("funnel_") and table.removeprefix("funnel_") not in names:
                self.published.drop_table(table, time.time())

    def _delete_expired(self) -> None:
        older_than = time.time() - self.grace_s
        for table in published_tables(self.published):
            self.published.delete_retired(table, older_than)

    def run(
        self,
        stop: threading.Event,
        interval_s: float,
        on_run: Callable[[MaterializeReport | None], None],
    ) -> None:
        """Runs every ``interval_s`` until ``stop`` (a ``threading.Event``) is set."""
        while True:
            try:
                on_run(self.run_once())
            except (OSError, duckdb.Error) as exc:
                log.warning("materializer run failed, will retry: %s", exc)
                on_run(None)
            if stop.wait(interval_s):
                return


def _tag_batch(batch: pa.RecordBatch, definitions: Definitions, now: datetime) -> pa.Table:
    ids = batch.column("event_id").to_pylist()
    if definitions.events:
        names = [definitions.defined_events(event) for event in _events(batch)]
    else:
        names = [[] for _ in ids]
    return pa.table(
        {
            "event_id": pa.array(ids, pa.string()),
            "names": pa.array(names, pa.list_(pa.string())),
            "version": pa.array([definitions.events_version] * len(ids), pa.string()),
            "tagged_at": pa.array([now] * len(ids), DEFINED_TAGS_SCHEMA.field("tagged_at").type),
        },
        schema=DEFINED_TAGS_SCHEMA,
    )


def _events(batch: pa.RecordBatch) -> Iterator[dict[str, Any]]:
    """The fields a definition looks at, as stage 1 sees them (JSON decoded)."""
    columns = {n: batch.column(n).to_pylist() for n in ("type", "event", "context", "elements")}
    for i in range(batch.num_rows):
        yield {
            "type": columns["type"][i],
            "event": columns["event"][i],
            "context": _json(columns["context"][i]),
            "elements": _json(columns["elements"][i]),
        }


def _json(text: str | None) -> Any:
    return orjson.loads(text) if text else None
