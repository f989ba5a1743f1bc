"""Removing a person's rows from every Parquet file of the lake and the published tables.

A file holding any of the person's keys is rewritten without those rows under its own name
(temporary file, fsync, rename: readers see the old file or the new one, never half), while
holding the table's lock, the one compactors and the materializer take. A merge that read
the old file before the rewrite can still write the rows into a new file, and the sink can
still land events that were in flight: so passes repeat until one finds nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.forget.keys import ID_COLUMNS, PersonKeys
from pipeline.warehouse.event_index import INDEX_TABLE, build_index, index_path
from pipeline.warehouse.lake import Lake, write_atomically

__all__ = ["PurgeResult", "purge_file", "purge_until_clean"]

log = logging.getLogger(__name__)

_SCHEMA_FILE = "_schema.parquet"


@dataclass
class PurgeResult:
    """What the passes removed, and how many passes it took."""

    rows_removed: int = 0
    files_rewritten: int = 0
    passes: int = 0
    clean: bool = False  # the last pass found nothing


def _matches(table: pa.Table, keys: PersonKeys) -> pa.ChunkedArray | None:
    mask = None
    for column in table.column_names:
        ids = keys.for_column(column) if column in ID_COLUMNS else frozenset()
        if not ids:
            continue
        values = table[column]
        if not pa.types.is_string(values.type):
            values = values.cast(pa.string())
        hit = pc.fill_null(pc.is_in(values, value_set=pa.array(sorted(ids), pa.string())), False)
        mask = hit if mask is None else pc.or_(mask, hit)
    return mask


def purge_file(path: Path, keys: PersonKeys) -> int:
    """Rewrite ``path`` without the person's rows; returns how many rows went."""
    if not set(pq.read_schema(path).names) & set(ID_COLUMNS):
        return 0
    table = pq.read_table(path)
    mask = _matches(table, keys)
    removed = 0 if mask is None else int(pc.sum(mask).as_py() or 0)
    if not removed:
        return 0
    assert mask is not None
    write_atomically(table.filter(pc.invert(mask)), path)
    return removed


def _table_dirs(data_dir: Path) -> Iterator[Path]:
    """Every folder under the data dir holding Parquet files (lake and published tables)."""
    folders = {p.parent for p in data_dir.rglob("*.parquet") if p.name != _SCHEMA_FILE}
    yield from sorted(folders)


def purge_once(data_dir: Path, keys: PersonKeys, result: PurgeResult) -> int:
    """One pass over every table folder; returns the rows removed."""
    removed = 0
    for folder in _table_dirs(data_dir):
        lake = Lake(folder.parent)
        with lake.hold(folder.name):
            for path in sorted(folder.glob("*.parquet")):
                if path.name == _SCHEMA_FILE:
                    continue
                try:
                    gone = purge_file(path, keys)
                except FileNotFoundError:  # deleted after its grace period meanwhile
                    continue
                if gone:
                    log.info("forget: removed %d rows from %s", gone, path)
                    _reindex(lake, folder.name, path)
                    result.files_rewritten += 1
                    removed += gone
    result.rows_removed += removed
    result.passes += 1
    return removed


def _reindex(lake: Lake, table: str, path: Path) -> None:
    """An events file rewritten without a person's rows gets its index rebuilt too (the
    old index still names the person's events)."""
    if table != "events" or not lake.table_dir(INDEX_TABLE).exists():
        return  # never indexed: an indexer starting now reads the rewritten file
    # Under the indexer's lock: one that read the file before the rewrite has finished.
    with lake.hold(INDEX_TABLE):
        target = index_path(lake, path)
        if target.exists():
            build_index(path, target)


def purge_until_clean(
    data_dir: Path, keys: PersonKeys, settle_s: float, max_passes: int = 10
) -> PurgeResult:
    """Passes ``settle_s`` apart until one (after the first) removes nothing."""
    result = PurgeResult()
    purge_once(data_dir, keys, result)
    while result.passes < max_passes:
        time.sleep(settle_s)
        if not purge_once(data_dir, keys, result):
            result.clean = True
            break
    return result
