"""What the sink holds between a fetch and a commit: the buffer of fetched records, the
batch taken from it, and the batch's write (decode, one Parquet file per table).

``BatchWriter.write`` runs in the sink's writer thread while the event loop fetches the next
batch; it touches only the lake, the catalog publisher (thread-safe) and counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from pipeline.errors import UndecodableRecord
from pipeline.forget.record import is_forget
from pipeline.metrics import SinkMetrics
from pipeline.seeds import is_seed
from pipeline.warehouse.catalog import CatalogPublisher
from pipeline.warehouse.decode import TableDecoder
from pipeline.warehouse.lake import Lake

__all__ = ["Batch", "BatchWriter", "Buffer", "Record"]


class Record(Protocol):
    """The part of a consumed Kafka record the sink uses (aiokafka's ``ConsumerRecord``)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass
class Batch:
    """Records taken from the buffer: their values per topic, and per partition the offset
    to commit once the files holding them are durable."""

    values: dict[str, list[bytes | None]] = field(default_factory=dict)
    offsets: dict[Any, int] = field(default_factory=dict)  # TopicPartition -> next offset
    records: int = 0


class Buffer:
    """Fetched records waiting to be written; due at ``max_records`` or when the oldest is
    ``max_seconds`` old."""

    def __init__(
        self, max_records: int, max_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_records = max_records
        self.max_seconds = max_seconds
        self._clock = clock
        self._batch = Batch()
        self._oldest = 0.0

    def __len__(self) -> int:
        return self._batch.records

    def add(self, polled: Mapping[Any, Sequence[Record]]) -> None:
        """Add what one fetch returned (partition → its records, in offset order)."""
        for tp, records in polled.items():
            if not records:
                continue
            if not self._batch.records:
                self._oldest = self._clock()
            self._batch.values.setdefault(tp.topic, []).extend(r.value for r in records)
            self._batch.offsets[tp] = records[-1].offset + 1
            self._batch.records += len(records)

    def due(self) -> bool:
        """Whether the buffered records should be written now."""
        if not self._batch.records:
            return False
        if self._batch.records >= self.max_records:
            return True
        return self._clock() - self._oldest >= self.max_seconds

    def take(self) -> Batch:
        """Everything buffered, as one batch; the buffer is empty after."""
        batch, self._batch = self._batch, Batch()
        return batch


class BatchWriter:
    """Decodes a batch and writes each table's rows as one atomic Parquet file."""

    def __init__(
        self,
        lake: Lake,
        publisher: CatalogPublisher,
        metrics: SinkMetrics,
        tables: Mapping[str, tuple[str, pa.Schema]],
    ) -> None:
        self.lake = lake
        self.publisher = publisher
        self.metrics = metrics
        self._decoders = {
            topic: TableDecoder(table, schema) for topic, (table, schema) in tables.items()
        }

    def write(self, batch: Batch) -> list[UndecodableRecord]:
        """Write ``batch``; returns the records that did not fit, to dead-letter. When it
        returns, every row written is durable."""
        rejected: list[UndecodableRecord] = []
        for topic, values in batch.values.items():
            decoder = self._decoders[topic]
            decoded = decoder.decode(_events_only(values))
            rejected.extend(decoded.rejected)
            if decoded.table.num_rows:
                self.lake.write(decoder.table, decoded.table)
                self.publisher.changed()
                self.metrics.rows_written.labels(decoder.table).inc(decoded.table.num_rows)
                self.metrics.files_written.labels(decoder.table).inc()
        self.publisher.publish_if_due()
        return rejected


def _events_only(values: Iterable[bytes | None]) -> list[bytes | None]:
    # Stage 2's state seeds and `autocap forget`'s records for running workers share the
    # stream's topics; they are not rows of any table.
    return [v for v in values if not (is_seed(v) or is_forget(v))]
