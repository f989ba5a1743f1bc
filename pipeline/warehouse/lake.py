"""The Parquet lake: files appear whole or not at all.

Each file is written under a temporary name, fsynced, renamed into place and the directory
fsynced, so a reader (or a crash) never sees half a file, and a file that exists is durable
before the sink commits the Kafka offsets it covers.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.processes import fsync_path

__all__ = ["Lake"]

_TMP_SUFFIX = ".tmp"  # never matches the readers' *.parquet glob


class Lake:
    """One folder per table under ``root``; ``write`` adds a file atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def table_dir(self, table: str) -> Path:
        """Folder holding ``table``'s Parquet files."""
        return self.root / table

    def glob(self, table: str) -> str:
        """The glob readers use for ``table`` (absolute, so it works from any directory)."""
        return str(self.table_dir(table).resolve() / "*.parquet")

    def ensure_table(self, table: str, schema: pa.Schema) -> None:
        """Create the folder and a zero-row file carrying ``schema``.

        Readers' globs then always match at least one file, so views work (typed, empty)
        before the first event arrives.
        """
        folder = self.table_dir(table)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "_schema.parquet").exists():
            self._write(schema.empty_table(), folder / "_schema.parquet")

    def write(self, table: str, data: pa.Table) -> Path:
        """Write ``data`` as a new file of ``table``; returns its final path once durable."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        final = self.table_dir(table) / f"{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        self._write(data, final)
        return final

    def _write(self, data: pa.Table, final: Path) -> None:
        tmp = final.with_name(final.name + _TMP_SUFFIX)
        try:
            with tmp.open("wb") as fh:
                pq.write_table(data, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_path(final.parent)

    def clean_temporaries(self, table: str) -> int:
        """Remove temp files a crash left behind; returns how many."""
        removed = 0
        for leftover in self.table_dir(table).glob("*" + _TMP_SUFFIX):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed
