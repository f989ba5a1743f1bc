"""The Parquet lake: files appear whole or not at all, and disappear only when unread.

Each file is written under a temporary name, fsynced, renamed into place and the directory
fsynced, so a reader (or a crash) never sees half a file, and a file that exists is durable
before the sink commits the Kafka offsets it covers.

Readers never list a table's folder themselves: the analysts' catalog names the *live*
files explicitly. A file merged away by compaction is first *retired* (recorded in the
table's ``_retired.json``), so the next catalog no longer names it, and deleted only after a
grace period, when no query can still be reading it. (With a glob over the folder, any
delete races a query that has just listed it; DuckDB then fails with "Cannot open file".)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.processes import fsync_path

__all__ = ["Lake", "temporary_path", "write_atomically"]

_TMP_SUFFIX = ".tmp"  # never a live file
#: A temporary file is named ``<final name>.<writer's pid>.tmp``: writers (several sinks,
#: the compactor, the materializer) never share one, and a cleanup only removes the
#: temporaries of writers that are gone.
_TMP_PID = re.compile(r"\.(\d+)\.tmp$")
_STALE_TMP_S = 3600.0  # a temporary this old is a leftover whoever wrote it
_SCHEMA_FILE = "_schema.parquet"
_RETIRED_FILE = "_retired.json"
_DROPPED_FILE = "_dropped"
_LOCK_FILE = "_retired.lock"


class Lake:
    """One folder per table under ``root``; ``write`` adds a file atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def table_dir(self, table: str) -> Path:
        """Folder holding ``table``'s Parquet files."""
        return self.root / table

    def data_files(self, table: str) -> list[Path]:
        """``table``'s data files (retired or not), oldest first: names start with a time."""
        folder = self.table_dir(table)
        return sorted(p for p in folder.glob("*.parquet") if p.name != _SCHEMA_FILE)

    def live_files(self, table: str) -> list[Path]:
        """What readers should read: the schema file (so a table is never an empty list)
        and every data file not retired; absolute paths."""
        retired = self.retired(table)
        folder = self.table_dir(table).resolve()
        live = [folder / p.name for p in self.data_files(table) if p.name not in retired]
        return [folder / _SCHEMA_FILE, *live]

    def retired(self, table: str) -> dict[str, float]:
        """Retired file name → when it was retired (Unix time)."""
        path = self.table_dir(table) / _RETIRED_FILE
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        return {str(name): float(at) for name, at in data.items()}

    @contextlib.contextmanager
    def _ledger(self, table: str) -> Iterator[None]:
        # `_retired.json` is read, changed and rewritten by compactors and the materializer,
        # possibly in several processes: one at a time, or one's retirements could be lost.
        with (self.table_dir(table) / _LOCK_FILE).open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            yield

    def hold(self, table: str) -> contextlib.AbstractContextManager[None]:
        """The table's writer lock (compactors, the materializer, ``autocap forget``)."""
        return self._ledger(table)

    def retire(self, table: str, files: Iterable[Path], at: float) -> None:
        """Record ``files`` as retired at ``at``: catalogs built from now on skip them."""
        with self._ledger(table):
            self._write_retired(table, self.retired(table) | {f.name: at for f in files})

    def delete_retired(self, table: str, older_than: float) -> int:
        """Delete files retired before ``older_than``; returns how many."""
        with self._ledger(table):
            retired = self.retired(table)
            expired = [name for name, at in retired.items() if at < older_than]
            for name in expired:
                (self.table_dir(table) / name).unlink(missing_ok=True)
                del retired[name]
            if expired:
                fsync_path(self.table_dir(table))
                self._write_retired(table, retired)
        return len(expired)

    def drop_table(self, table: str, at: float) -> None:
        """Retire all of ``table`` and mark it dropped (catalogs stop naming it)."""
        self.retire(table, self.data_files(table), at)
        (self.table_dir(table) / _DROPPED_FILE).touch()
        fsync_path(self.table_dir(table))

    def is_dropped(self, table: str) -> bool:
        """Whether ``drop_table`` dropped ``table``."""
        return (self.table_dir(table) / _DROPPED_FILE).exists()

    def _write_retired(self, table: str, retired: dict[str, float]) -> None:
        final = self.table_dir(table) / _RETIRED_FILE
        tmp = temporary_path(final)
        with tmp.open("wb") as fh:
            fh.write(orjson.dumps(retired))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_path(final.parent)

    def ensure_table(self, table: str, schema: pa.Schema) -> None:
        """Create the folder and a zero-row file carrying ``schema``.

        Readers then always have at least one file, so views work (typed, empty) before the
        first event arrives.
        """
        folder = self.table_dir(table)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / _SCHEMA_FILE).exists():
            self._write(schema.empty_table(), folder / _SCHEMA_FILE)
        (folder / _DROPPED_FILE).unlink(missing_ok=True)  # a dropped table defined again

    def write(self, table: str, data: pa.Table) -> Path:
        """Write ``data`` as a new file of ``table``; returns its final path once durable."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        final = self.table_dir(table) / f"{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        self._write(data, final)
        return final

    def _write(self, data: pa.Table, final: Path) -> None:
        write_atomically(data, final)

    def clean_temporaries(self, table: str) -> int:
        """Remove temp files a crashed writer left behind; returns how many. A live
        writer's temporaries (another sink on this host, mid-write) are left alone."""
        removed = 0
        for leftover in self.table_dir(table).glob("*" + _TMP_SUFFIX):
            if _writer_alive(leftover):
                continue
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed


def write_atomically(
    data: pa.Table, final: Path, row_group_size: int | None = None, compression: str = "zstd"
) -> None:
    """Write ``data`` to ``final`` as Parquet: temp name, fsync, rename, fsync the folder.
    Readers see the old file or the new one, never a part."""
    tmp = temporary_path(final)
    try:
        with tmp.open("wb") as fh:
            pq.write_table(data, fh, compression=compression, row_group_size=row_group_size)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(final.parent)


def temporary_path(final: Path) -> Path:
    """Where to write ``final`` before renaming it into place (unique to this process)."""
    return final.with_name(f"{final.name}.{os.getpid()}{_TMP_SUFFIX}")


def _writer_alive(path: Path) -> bool:
    match = _TMP_PID.search(path.name)
    try:
        if match is None or time.time() - path.stat().st_mtime > _STALE_TMP_S:
            return False
        os.kill(int(match.group(1)), 0)
    except (ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:
        return True  # a process of another user: alive
    return True
