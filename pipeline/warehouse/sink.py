"""The sink: ``autocap.enriched`` in batches → Arrow → an atomic Parquet file → commit.

Offsets are committed only after the file covering them is durable, so a crash replays
records instead of losing them; the replayed copies carry the same event_id and the
``events`` view keeps one. Records that cannot be decoded go to the dead-letter topic.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from pipeline.deadletter import dead_letter_record
from pipeline.metrics import SinkMetrics
from pipeline.seeds import is_seed
from pipeline.settings import Settings
from pipeline.timeutil import utc_now
from pipeline.warehouse.catalog import CatalogPublisher
from pipeline.warehouse.jsonl import json_lines_to_table
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES, records_to_table

__all__ = ["EventSink", "decode_record"]

log = logging.getLogger(__name__)

#: A commit that takes longer is given up (the rows are durable; a replay collapses).
_COMMIT_TIMEOUT_MS = 5000
_CLOSING_TIMEOUT_MS = 1000


def decode_record(value: bytes | None, schema: pa.Schema) -> dict[str, Any]:
    """Decode one record for a lake table; ``ValueError`` names what is wrong."""
    if value is None:
        raise ValueError("empty record")
    record = orjson.loads(value)
    if not isinstance(record, dict):
        raise ValueError("record is not a JSON object")
    for name in _required(schema):
        if not isinstance(record.get(name), str):
            raise ValueError(f"{name} missing or not a string")
    return record


@functools.cache
def _required(schema: pa.Schema) -> tuple[str, ...]:
    # Looked up once per table, not per record: the sink decodes every row it writes.
    return tuple(f.name for f in schema if not f.nullable)


class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Write what we hold for these partitions before another member takes them over.
        self._flush()

    def on_partitions_assigned(self, assigned: Any) -> None:
        pass


class EventSink:
    """Consumes stage 1's output topics and writes each to its lake table (``TABLES``)."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        lake: Lake,
        metrics: SinkMetrics,
        publisher: CatalogPublisher,
    ) -> None:
        self.settings = settings
        self.lake = lake
        self.metrics = metrics
        self.publisher = publisher
        self.tables = {
            settings.topic(topic): (table, schema) for table, (topic, schema) in TABLES.items()
        }
        self._buffer: list[Any] = []
        self._commit_timeout_ms = _COMMIT_TIMEOUT_MS
        self._oldest = 0.0
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=settings.group_id("sink"),
            client_id="autocap-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.consumer_session_timeout_s * 1000),
            heartbeat_interval_ms=max(100, int(settings.consumer_session_timeout_s * 1000 / 5)),
            max_poll_records=min(settings.sink_batch_max_records, 5000),
        )
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", client_id="autocap-sink-dlq"
        )
        self._consumer.subscribe(sorted(self.tables), listener=_FlushOnRevoke(self.flush))

    def run(self, stop: threading.Event) -> None:
        """Poll, batch and flush until ``stop`` is set; then flush what is left and leave."""
        for table, schema in self.tables.values():
            self.lake.ensure_table(table, schema)
            if removed := self.lake.clean_temporaries(table):
                log.warning(
                    "removed %d partial files left by a crash in %s",
                    removed,
                    self.lake.table_dir(table),
                )
        try:
            while not stop.is_set():
                polled = self._consumer.poll(timeout_ms=100)
                for records in polled.values():
                    if not self._buffer:
                        self._oldest = time.monotonic()
                    self._buffer.extend(records)
                if self._due():
                    self.flush()
                self.publisher.publish_if_due()
            # Leaving: the broker may be gone too (autocap up was killed, every child got
            # SIGTERM), so Kafka gets a second at most; the rows are durable either way
            # and a replay of uncommitted ones collapses by event_id.
            self._commit_timeout_ms = _CLOSING_TIMEOUT_MS
            self.flush()
            self.publisher.publish()
        finally:
            self._consumer.close(autocommit=False, timeout_ms=_CLOSING_TIMEOUT_MS)
            self._producer.close(timeout=_CLOSING_TIMEOUT_MS / 1000)

    def _due(self) -> bool:
        if not self._buffer:
            return False
        if len(self._buffer) >= self.settings.sink_batch_max_records:
            return True
        return time.monotonic() - self._oldest >= self.settings.sink_batch_max_seconds

    def flush(self) -> None:
        """Write the buffered records as one Parquet file per table, then commit offsets."""
        if not self._buffer:
            return
        started = time.perf_counter()
        batch, self._buffer = self._buffer, []
        values: dict[str, list[bytes | None]] = {}
        for rec in batch:
            if is_seed(rec.value):
                continue  # stage 2's state seeds share its input topic; not events
            values.setdefault(self.tables[rec.topic][0], []).append(rec.value)
        for table, table_values in values.items():
            data = self._decode(table, table_values)
            if data.num_rows:
                self.lake.write(table, data)
                self.publisher.changed()
                self.metrics.rows_written.labels(table).inc(data.num_rows)
                self.metrics.files_written.labels(table).inc()
        # Dead letters durable before their offsets commit.
        self._producer.flush(timeout=self._commit_timeout_ms / 1000)
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for rec in batch:
            tp = TopicPartition(rec.topic, rec.partition)
            if tp not in offsets or rec.offset + 1 > offsets[tp].offset:
                offsets[tp] = OffsetAndMetadata(rec.offset + 1, "", -1)
        try:
            self._consumer.commit(offsets, timeout_ms=self._commit_timeout_ms)
            self.metrics.last_commit_timestamp.set_to_current_time()
        except (CommitFailedError, KafkaError) as exc:
            # The rows are durable; a later replay of them is collapsed by event_id.
            log.warning("offset commit failed after a rebalance (%s); records may replay", exc)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _decode(self, table: str, values: list[bytes | None]) -> pa.Table:
        """The batch's records for ``table`` as Arrow: all at once when every record fits,
        else record by record, dead-lettering the ones that do not."""
        schema = TABLES[table][1]
        whole = [v for v in values if v is not None]
        if len(whole) == len(values):
            try:
                return json_lines_to_table(whole, schema, self.lake.table_dir(table))
            except ValueError:
                pass  # some record is bad: find it below
        rows = []
        for value in values:
            try:
                rows.append(decode_record(value, schema))
            except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                self._dead_letter(value or b"", str(exc))
        return self._to_arrow(table, rows)

    def _to_arrow(self, table: str, rows: list[dict[str, Any]]) -> pa.Table:
        """The rows as Arrow; a row Arrow cannot take (a bad timestamp) is dead-lettered
        instead of failing the whole batch, which would replay it forever."""
        schema = TABLES[table][1]
        try:
            return records_to_table(rows, schema)
        except (pa.ArrowException, TypeError, ValueError):
            good = []
            for row in rows:
                try:
                    records_to_table([row], schema)
                    good.append(row)
                except (pa.ArrowException, TypeError, ValueError) as exc:
                    self._dead_letter(orjson.dumps(row), f"{table}: {exc}")
            return records_to_table(good, schema)

    def _dead_letter(self, payload: bytes, reason: str) -> None:
        self.metrics.records_dead_lettered.labels("undecodable").inc()
        self._producer.send(
            self.settings.topic("dead_letter"),
            dead_letter_record(
                stage="sink",
                reason="undecodable",
                field=None,
                message=reason,
                payload=payload,
                received_at=utc_now(),
            ),
        )
