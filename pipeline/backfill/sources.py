"""Reading Segment-spec history for ``autocap import``: JSONL (optionally gzipped) or Parquet.

Both readers stream: JSONL line by line, Parquet one row batch at a time, so a file larger
than memory imports in constant memory. Each item is one message (or why it is not one) with
its line or row number, for the import's report and the dead-letter record.

Parquet shape: one row per message, columns named as the Segment fields (``type``,
``event``, ``name``, ``messageId``, ``anonymousId``, ``userId``, ``groupId``, ``previousId``,
``timestamp``, ``originalTimestamp``, ``sentAt``, ``receivedAt``, ``context``,
``properties``, ``traits``, ``integrations``, ``elements``) or their snake_case spellings
(``message_id``, ``anonymous_id``... as Segment's warehouses name them). Times are ISO-8601
strings or Arrow timestamps (without a time zone: UTC). The nested fields are JSON text or
Arrow structs/lists. Null columns count as absent. Other columns are kept on the message
(and ignored by the collector's rules, as extra JSON keys are).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import ImportFailed, InvalidEvent

__all__ = ["FORMATS", "SourceItem", "detect_format", "open_source"]

FORMATS = ("auto", "jsonl", "parquet")

#: snake_case spellings (Segment's warehouse columns) -> the message field.
_ALIASES = {
    "message_id": "messageId",
    "anonymous_id": "anonymousId",
    "user_id": "userId",
    "group_id": "groupId",
    "previous_id": "previousId",
    "original_timestamp": "originalTimestamp",
    "sent_at": "sentAt",
    "received_at": "receivedAt",
}
_NESTED = frozenset({"context", "properties", "traits", "integrations", "elements"})
_PARQUET_BATCH_ROWS = 4096


@dataclass(frozen=True)
class SourceItem:
    """One line (JSONL) or row (Parquet): the message, or the error that refused it."""

    number: int  # 1-based line or row number
    message: dict[str, Any] | None
    raw: bytes  # what goes in a dead-letter record
    error: InvalidEvent | None = None


class Source:
    """An open input file: its ``items()``, and how far through it ``position()`` is (in
    ``unit``s out of ``total``, for the progress bar)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self.unit = "bytes" if fmt == "jsonl" else "rows"
        self._raw: IO[bytes] | None = None
        self._rows_done = 0
        self.read = 0  # items yielded so far
        try:
            if fmt == "parquet":
                self._parquet = pq.ParquetFile(path)
                self.total = self._parquet.metadata.num_rows
            else:
                self.total = path.stat().st_size
        except (OSError, pa.ArrowException) as exc:
            raise ImportFailed(f"{path}: cannot read as {fmt} ({exc})") from None

    def position(self) -> int:
        """Bytes of the file read so far (JSONL; compressed bytes when gzipped) or rows."""
        if self.format == "parquet":
            return self._rows_done
        return self._raw.tell() if self._raw is not None and not self._raw.closed else 0

    def items(self) -> Iterator[SourceItem]:
        """Every message of the file, in file order."""
        items = self._parquet_items() if self.format == "parquet" else self._jsonl_items()
        for item in items:
            self.read += 1
            yield item

    def _jsonl_items(self) -> Iterator[SourceItem]:
        try:
            with self.path.open("rb") as raw:
                self._raw = raw
                gzipped = raw.read(2) == b"\x1f\x8b"
                raw.seek(0)
                lines: Iterable[bytes] = gzip.GzipFile(fileobj=raw) if gzipped else raw
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        yield _from_json_line(number, line.rstrip(b"\r\n"))
        except (OSError, EOFError) as exc:  # a truncated gzip stream, a vanished file
            raise ImportFailed(f"{self.path}: read failed ({exc})") from None

    def _parquet_items(self) -> Iterator[SourceItem]:
        columns = self._parquet.schema_arrow.names
        try:
            for batch in self._parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
                for row in batch.to_pylist():
                    self._rows_done += 1
                    yield _from_row(self._rows_done, row, columns)
        except pa.ArrowException as exc:
            raise ImportFailed(f"{self.path}: read failed ({exc})") from None


def _from_json_line(number: int, line: bytes) -> SourceItem:
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        return SourceItem(number, None, line, InvalidEvent("line", "json", "not valid JSON"))
    if not isinstance(message, dict):
        error = InvalidEvent("line", "type", "each line must be a JSON object")
        return SourceItem(number, None, line, error)
    return SourceItem(number, message, line)


def _from_row(number: int, row: dict[str, Any], columns: list[str]) -> SourceItem:
    message: dict[str, Any] = {}
    for column in columns:
        value = row[column]
        if value is None:
            continue
        name = _ALIASES.get(column, column)
        if name in _NESTED and isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                error = InvalidEvent(name, "json", "column holds text that is not valid JSON")
                return SourceItem(number, None, _dump(row), error)
        message[name] = value
    # Arrow values (datetimes, decimals...) become their JSON spelling, as in a JSONL line.
    raw = _dump(message)
    return SourceItem(number, orjson.loads(raw), raw)


def _dump(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def detect_format(path: Path, fmt: str = "auto") -> str:
    """``jsonl`` or ``parquet``: as asked, else by the file's first bytes."""
    if fmt not in FORMATS:
        raise ImportFailed(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    if fmt != "auto":
        return fmt
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read ({exc.strerror})") from None
    return "parquet" if magic == b"PAR1" else "jsonl"


def open_source(path: Path, fmt: str = "auto") -> Source:
    """Open ``path`` for reading (format ``auto`` sniffs Parquet's magic bytes)."""
    return Source(path, detect_format(path, fmt))
