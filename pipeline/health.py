"""Pipeline health, measured from outside the roles: consumer lag and end-to-end freshness.

The health exporter (``autocap health``, started by ``autocap up``) runs apart from the
roles it watches, so lag keeps being reported when a worker or sink is dead, which is when
it matters. Everything is computed when Prometheus scrapes:

- consumer lag per group, topic and partition: the end offset minus the group's committed
  offset (a partition the group never committed counts from the beginning), read with
  plain Kafka requests that work on any cluster;
- freshness: now minus the newest ``received_at`` (collector clock) visible in the lake's
  ``events`` files, read from the Parquet footers of the newest few files. The collector
  clock is used rather than the event time because event times come from clients and may
  run hours ahead, which would hide a stalled pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow.parquet as pq
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.settings import Settings
from pipeline.warehouse.event_index import indexed_split
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES

__all__ = [
    "HealthCollector",
    "LagReader",
    "PartitionLag",
    "group_topics",
    "newest_received_at",
    "partition_lag",
]

log = logging.getLogger(__name__)

#: How many of the newest lake files to read footers from (several sinks write at once).
_NEWEST_FILES = 4


@dataclass(frozen=True)
class PartitionLag:
    """One partition's lag for one consumer group."""

    group: str
    topic: str
    partition: int
    lag: int
    #: The group's committed offset (``None`` before its first commit).
    committed: int | None = None


def partition_lag(end: int, committed: int | None, beginning: int) -> int:
    """Records the group has yet to commit: ``end - committed``, or ``end - beginning`` when
    the group never committed (it will start at the beginning: auto_offset_reset=earliest).
    A committed offset below the beginning (records expired) counts from the beginning."""
    start = beginning if committed is None else max(committed, beginning)
    return max(0, end - start)


def group_topics(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Each consumer group autocap runs and the topics it consumes."""
    stream = ("raw", "identities") + (
        ("enriched", "account_updates") if settings.worker_stage2 else ()
    )
    return {
        settings.group_id("stream"): tuple(settings.topic(topic) for topic in stream),
        settings.group_id("sink"): tuple(
            sorted({settings.topic(topic) for topic, _schema in TABLES.values()})
        ),
    }


class LagReader:
    """Reads end, beginning and committed offsets; one idle consumer per group.

    The consumers never subscribe, so they never join (or disturb) the groups they read.
    """

    def __init__(self, bootstrap: str, timeout_s: float) -> None:
        self.bootstrap = bootstrap
        self.timeout_ms = int(timeout_s * 1000)
        self._consumers: dict[str | None, KafkaConsumer] = {}

    def _consumer(self, group: str | None) -> KafkaConsumer:
        if group not in self._consumers:
            self._consumers[group] = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=group,
                client_id="autocap-health",
                enable_auto_commit=False,
                request_timeout_ms=max(self.timeout_ms, 1000) + 500,
                bootstrap_timeout_ms=self.timeout_ms,  # a scrape must answer, Kafka or not
                reconnect_backoff_max_ms=1000,
                max_partition_fetch_bytes=1,  # the high watermark is all we fetch for
                fetch_max_wait_ms=50,  # an empty partition answers at once
            )
        return self._consumers[group]

    def _partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        consumer = self._consumer(None)
        known = consumer.topics()  # refreshes metadata
        found = []
        for topic in topics:
            if topic in known:
                for p in sorted(consumer.partitions_for_topic(topic) or ()):
                    found.append(TopicPartition(topic, p))
        return found

    def _ends(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """End offsets: the larger of ListOffsets and a fetch's high watermark.

        The embedded Tansu answers ListOffsets with the last *batch's* base offset + 1, so a
        batch of 500 records would read as lag 1; a fetch response carries the true high
        watermark. On a real cluster both agree. The fetch starts at the listed end, so at
        most one batch per partition crosses the wire.
        """
        consumer = self._consumer(None)
        listed = consumer.end_offsets(partitions, timeout_ms=self.timeout_ms)
        consumer.assign(partitions)  # fresh partition states: no stale high watermarks
        for tp in partitions:
            consumer.seek(tp, max(0, listed[tp] - 1))
        deadline = time.monotonic() + self.timeout_ms / 1000
        while time.monotonic() < deadline:
            if all(consumer.highwater(tp) is not None for tp in partitions):
                break
            consumer.poll(timeout_ms=50, max_records=1)
        return {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in partitions}

    def read(self, groups: Mapping[str, Sequence[str]]) -> list[PartitionLag]:
        """Lag of every partition of every group's topics; raises ``KafkaError``."""
        partitions = self._partitions(sorted({t for ts in groups.values() for t in ts}))
        offsets = self._consumer(None)
        beginnings = offsets.beginning_offsets(partitions, timeout_ms=self.timeout_ms)
        ends = self._ends(partitions)
        lags = []
        for group, topics in groups.items():
            consumer = self._consumer(group)
            for tp in partitions:
                if tp.topic in topics:
                    committed = consumer.committed(tp, timeout_ms=self.timeout_ms)
                    lag = partition_lag(ends[tp], committed, beginnings[tp])
                    lags.append(PartitionLag(group, tp.topic, tp.partition, lag, committed))
        return lags

    def close(self) -> None:
        """Close every consumer (the next ``read`` opens fresh ones)."""
        for consumer in self._consumers.values():
            with contextlib.suppress(KafkaError):
                consumer.close()
        self._consumers.clear()


def _as_epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def newest_received_at(
    lake: Lake, table: str = "events", column: str = "received_at"
) -> float | None:
    """Unix time of the newest ``column`` value in the newest files of a lake table, from
    the Parquet statistics (no data pages read); None when the table has no rows yet."""
    newest: float | None = None
    for path in reversed(lake.data_files(table)[-_NEWEST_FILES:]):
        try:
            meta = pq.ParquetFile(path).metadata
        except (OSError, ValueError):  # removed by compaction since the listing
            continue
        index = meta.schema.to_arrow_schema().get_field_index(column)
        for rg in range(meta.num_row_groups):
            stats = meta.row_group(rg).column(index).statistics
            value = _as_epoch(stats.max) if stats is not None and stats.has_min_max else None
            if value is not None and (newest is None or value > newest):
                newest = value
    return newest


def unindexed_files(lake: Lake) -> int:
    """How many live events files have no events index yet (the compactor's rounds write
    them; a growing count means funnels fall back to reading the lake)."""
    if not lake.table_dir("events").exists():
        return 0
    schema_file, *live = lake.live_files("events")
    return len(indexed_split(lake, schema_file, live)[1]) - 1  # not the schema file


class HealthCollector(Collector):
    """Prometheus collector computing lag and freshness at scrape time."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        clock: Callable[[], float] = time.time,
        reader: LagReader | None = None,
    ) -> None:
        self.settings = settings
        self.groups = group_topics(settings)
        self.reader = reader or LagReader(bootstrap, min(5.0, settings.kafka_connect_timeout_s))
        self.clock = clock
        self._lock = threading.Lock()  # Prometheus and `autocap status` may scrape at once

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            yield from self._kafka()
            yield from self._freshness()

    def _kafka(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "autocap_kafka_up", "1 if Kafka answered the last lag query, else 0."
        )
        lag = GaugeMetricFamily(
            "autocap_consumer_lag_messages",
            "Records not yet committed by a consumer group, per topic and partition.",
            labels=["group", "topic", "partition"],
        )
        # With the lag, it tells a stuck partition (lag, no commit moving) from a slow one.
        committed = GaugeMetricFamily(
            "autocap_consumer_committed_offset",
            "A consumer group's committed offset per topic and partition (absent before the "
            "group's first commit there).",
            labels=["group", "topic", "partition"],
        )
        try:
            for item in self.reader.read(self.groups):
                labels = [item.group, item.topic, str(item.partition)]
                lag.add_metric(labels, float(item.lag))
                if item.committed is not None:
                    committed.add_metric(labels, float(item.committed))
            up.add_metric([], 1.0)
        except (KafkaError, OSError, AssertionError) as exc:
            # kafka-python raises a zoo of errors on a dead cluster; start over next scrape.
            log.warning("lag query to %s failed: %r", self.reader.bootstrap, exc)
            self.reader.close()
            up.add_metric([], 0.0)
        yield up
        yield lag
        yield committed

    def _freshness(self) -> Iterator[GaugeMetricFamily]:
        newest = newest_received_at(Lake(self.settings.lake_dir))
        stamp = GaugeMetricFamily(
            "autocap_lake_newest_received_timestamp_seconds",
            "Unix time (collector clock) of the newest event visible in the lake.",
        )
        freshness = GaugeMetricFamily(
            "autocap_pipeline_freshness_seconds",
            "Now minus the newest event's received time visible in the lake.",
        )
        if newest is not None:
            stamp.add_metric([], newest)
            freshness.add_metric([], max(0.0, self.clock() - newest))
        yield stamp
        yield freshness
        unindexed = GaugeMetricFamily(
            "autocap_lake_events_unindexed_files",
            "Live events files without an events index yet (funnels read them from the lake).",
        )
        unindexed.add_metric([], float(unindexed_files(Lake(self.settings.lake_dir))))
        yield unindexed
