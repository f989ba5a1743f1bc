"""The events index: a narrow, name-sorted companion file for every file of the events table.

A funnel (or any engine that groups step events per person) needs four things of each event:
its name, its person, its time and its identity (for deduplication). Reading them from the
lake means decoding the ``event`` column of every row and three string/time columns of the
matching ones. The index holds just those four as integers where possible, sorted by event
name so the row groups of other events are skipped from the footers alone:

    event (string) · person_hash (UBIGINT, NULL without a person) · ts (ms) ·
    received_ms · event_hash (UBIGINT) · sorted_event_hash (UBIGINT)

``person_hash`` and ``event_hash`` are DuckDB's ``hash()`` of ``person_id`` and ``event_id``;
``sorted_event_hash`` holds, along each event name's rows, that name's event hashes in
ascending order (not the row's own): whatever names a query filters on, it reads sorted
runs, and finding the event_ids that occur twice (crash replays) becomes a merge of runs
instead of a sort of every hash. ``received_ms`` lets a reader keep the earliest-received
copy of a replayed event, as the ``events`` view does, without going back to the lake.
That hash function is only promised within one DuckDB version, so index files carry the
version that wrote them (and the index's own format version) in their name, and a reader
built on another version ignores them (they are rebuilt by the next indexing round).

Life cycle, kept in step with the lake's own rules:
- ``index_events`` (the compactor's round, ``bench/``) indexes every live events file that
  has no index yet; the catalog then reads indexed files through the index and the rest
  (the newest few seconds) from the lake, so answers never wait for indexing.
- An index file is written atomically (temp, fsync, rename) and is deleted only once its
  events file is gone, i.e. after the compactor's grace period: a query that listed it can
  still open it. ``autocap forget`` rebuilds the index of every events file it rewrites.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.sqlfiles import render_sql
from pipeline.warehouse.lake import Lake, write_atomically

__all__ = [
    "INDEX_SCHEMA",
    "INDEX_TABLE",
    "build_index",
    "ensure_index_table",
    "index_events",
    "index_path",
    "indexed_split",
]

log = logging.getLogger(__name__)

INDEX_TABLE = "events_index"

INDEX_SCHEMA = pa.schema(
    [
        pa.field("event", pa.string()),
        pa.field("person_hash", pa.uint64()),
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("received_ms", pa.int64(), nullable=False),
        pa.field("event_hash", pa.uint64(), nullable=False),
        # Not this row's: its name's event hashes in ascending order (build SQL).
        pa.field("sorted_event_hash", pa.uint64(), nullable=False),
    ]
)

#: Rows per row group: small enough that one event name's rows skip the others' groups,
#: large enough that a footer stays small (10M events: ~150 groups).
_ROW_GROUP_ROWS = 65_536


#: Bumped when the index's columns change: files of another format are rebuilt.
_FORMAT = 3


def _hash_tag() -> str:
    """Names the index format and the hash function behind an index file (DuckDB's, per
    version)."""
    return f"i{_FORMAT}-duckdb" + duckdb.__version__.replace(".", "_")


def index_path(lake: Lake, events_file: Path) -> Path:
    """Where the index of ``events_file`` (a file of the lake's events table) lives."""
    name = events_file.name.removesuffix(".parquet")
    return lake.table_dir(INDEX_TABLE) / f"{name}.{_hash_tag()}.parquet"


def build_index(events_file: Path, target: Path) -> int:
    """Write the index of ``events_file`` to ``target`` atomically; returns its rows."""
    con = duckdb.connect()
    try:
        sql = render_sql("lake/events_index_build", source=str(events_file))
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    table = table.append_column("sorted_event_hash", _sorted_per_name(table))
    target.parent.mkdir(parents=True, exist_ok=True)
    # LZ4, not the lake's zstd: hashes barely compress either way, and a funnel reads
    # these files a third faster.
    write_atomically(
        table.cast(INDEX_SCHEMA), target, row_group_size=_ROW_GROUP_ROWS, compression="lz4"
    )
    return int(table.num_rows)


def _sorted_per_name(table: pa.Table) -> pa.Array:
    """Each name's event hashes in ascending order, along that name's rows (``table`` is
    sorted by name): the ``sorted_event_hash`` column. Sorting slices in NumPy takes half
    the time of pairing two window orders in SQL."""
    names = pc.dictionary_encode(table["event"].combine_chunks(), null_encoding="encode")
    codes = names.indices.to_numpy()
    hashes = table["event_hash"].combine_chunks().to_numpy()
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    ends = np.append(starts[1:], codes.size)
    runs = np.empty_like(hashes)
    for start, end in zip(starts, ends, strict=True):
        runs[start:end] = np.sort(hashes[start:end])
    return pa.array(runs, pa.uint64())


def ensure_index_table(lake: Lake) -> None:
    """Create the index folder and its schema file, or replace a schema file an older
    index format left (readers take the columns from it)."""
    lake.ensure_table(INDEX_TABLE, INDEX_SCHEMA)
    schema_file = lake.table_dir(INDEX_TABLE) / "_schema.parquet"
    if not pq.read_schema(schema_file).equals(INDEX_SCHEMA, check_metadata=False):
        write_atomically(INDEX_SCHEMA.empty_table(), schema_file)


def indexed_split(
    lake: Lake, schema_file: Path, files: Sequence[Path]
) -> tuple[list[Path], list[Path]]:
    """Events ``files`` as (the index files of those indexed, the files not indexed yet);
    each list starts with a schema file (the index's, ``schema_file``), so neither is
    ever empty for a reader."""
    index_dir = lake.table_dir(INDEX_TABLE).resolve()
    indexed, unindexed = [index_dir / "_schema.parquet"], [schema_file]
    for path in files:
        index = index_path(lake, path)
        if index.exists():
            indexed.append(index_dir / index.name)
        else:
            unindexed.append(path)
    return indexed, unindexed


def index_events(lake: Lake) -> int:
    """Index every live events file without an index and delete the index files whose
    events file is gone (or that another DuckDB version wrote); returns files indexed."""
    ensure_index_table(lake)
    built = 0
    # One indexer at a time (each sink runs a compactor): another's fresh index file must
    # not look stale to this one's cleanup.
    with lake.hold(INDEX_TABLE):
        for path in lake.live_files("events")[1:]:
            target = index_path(lake, path)
            if target.exists():
                continue
            try:
                build_index(path, target)
            except (FileNotFoundError, duckdb.IOException):
                continue  # merged away and deleted meanwhile: nothing to index
            built += 1
        wanted = {index_path(lake, p).name for p in lake.data_files("events")}
        for stale in lake.data_files(INDEX_TABLE):
            if stale.name not in wanted:
                stale.unlink(missing_ok=True)
    if built:
        log.info("indexed %d events files", built)
    return built
