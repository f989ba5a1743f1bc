"""Prometheus metrics, built in one place from a registry passed in.

Names follow Prometheus conventions: ``autocap_`` prefix, base units, ``_total`` counters.
Labels only ever carry bounded values (a reason code, a topic), never ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

__all__ = [
    "CollectorMetrics",
    "MaterializerMetrics",
    "SinkMetrics",
    "WorkerMetrics",
    "process_registry",
    "serve_metrics",
]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A materializer run rebuilds tables over the whole lake: seconds to many minutes.
_RUN_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


@dataclass(frozen=True)
class CollectorMetrics:
    """What the HTTP collector counts."""

    requests: Counter
    events_accepted: Counter
    events_rejected: Counter
    timestamps_clamped: Counter
    events_forgotten: Counter
    request_seconds: Histogram
    received_bytes: Counter
    produce_seconds: Histogram
    producer_errors: Counter
    events_spooled: Counter
    events_drained: Counter
    spool_bytes: Gauge
    spool_max_bytes: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> CollectorMetrics:
        """Register the collector's metrics in ``registry``."""
        return cls(
            requests=Counter(
                "autocap_collector_requests",
                "HTTP requests by route and status.",
                ["route", "status"],
                registry=registry,
            ),
            events_accepted=Counter(
                "autocap_collector_events_accepted",
                "Events acknowledged by Kafka and answered 200.",
                registry=registry,
            ),
            events_rejected=Counter(
                "autocap_collector_events_rejected",
                "Events refused, by reason.",
                ["reason"],
                registry=registry,
            ),
            timestamps_clamped=Counter(
                "autocap_collector_timestamps_clamped",
                "Events whose corrected time was over 23 h ahead, stored at receipt time.",
                registry=registry,
            ),
            events_forgotten=Counter(
                "autocap_collector_events_forgotten",
                "Events dropped (answered 200, never stored) because `autocap forget` named "
                "their anonymousId or userId.",
                registry=registry,
            ),
            request_seconds=Histogram(
                "autocap_collector_request_duration_seconds",
                "Time from request to answer.",
                ["route"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            received_bytes=Counter(
                "autocap_collector_received_bytes",
                "Request body bytes as received (compressed or not).",
                registry=registry,
            ),
            produce_seconds=Histogram(
                "autocap_collector_produce_duration_seconds",
                "Time for Kafka to acknowledge one request's events.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            producer_errors=Counter(
                "autocap_collector_producer_errors",
                "Sends Kafka did not acknowledge in time, by error.",
                ["error"],
                registry=registry,
            ),
            events_spooled=Counter(
                "autocap_collector_events_spooled",
                "Events written to the disk spool because Kafka could not take them.",
                registry=registry,
            ),
            events_drained=Counter(
                "autocap_collector_events_drained",
                "Spooled events later acknowledged by Kafka.",
                registry=registry,
            ),
            spool_bytes=Gauge(
                "autocap_collector_spool_bytes",
                "Bytes waiting in the disk spool.",
                registry=registry,
            ),
            spool_max_bytes=Gauge(
                "autocap_collector_spool_max_bytes",
                "Spool capacity (AUTOCAP_SPOOL_MAX_BYTES); the collector answers 503 when full.",
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class WorkerMetrics:
    """What a stream worker counts."""

    events_processed: Counter
    events_dead_lettered: Counter
    processing_seconds: Histogram
    messages_received: Counter
    messages_sent: Counter
    send_errors: Counter
    rebalances: Counter
    commit_seconds: Histogram
    partition_rewinds: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WorkerMetrics:
        """Register the worker's metrics in ``registry``.

        Table sizes and assigned partitions are read at scrape time by
        ``pipeline.stream.sensor.WorkerStateCollector``, not kept here.
        """
        return cls(
            events_processed=Counter(
                "autocap_worker_events_processed",
                "Events processed, by agent.",
                ["agent"],
                registry=registry,
            ),
            events_dead_lettered=Counter(
                "autocap_worker_events_dead_lettered",
                "Undecodable records sent to the dead-letter topic.",
                ["agent", "reason"],
                registry=registry,
            ),
            processing_seconds=Histogram(
                "autocap_worker_processing_duration_seconds",
                "Time an agent spends on one event, sends included.",
                ["agent"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            messages_received=Counter(
                "autocap_worker_messages_received",
                "Kafka records the worker consumed, by topic (changelogs included).",
                ["topic"],
                registry=registry,
            ),
            messages_sent=Counter(
                "autocap_worker_messages_sent",
                "Records the worker produced, by topic.",
                ["topic"],
                registry=registry,
            ),
            send_errors=Counter(
                "autocap_worker_send_errors",
                "Records Kafka refused or did not acknowledge, by topic.",
                ["topic"],
                registry=registry,
            ),
            rebalances=Counter(
                "autocap_worker_rebalances",
                "Consumer group rebalances this worker went through.",
                registry=registry,
            ),
            commit_seconds=Histogram(
                "autocap_worker_commit_duration_seconds",
                "Time to commit consumer offsets.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            partition_rewinds=Counter(
                "autocap_worker_partition_rewinds",
                "Partitions sent back to their committed offset because records past it were"
                " processed while ones before were not (dropped by the consumer), by topic.",
                ["topic"],
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class SinkMetrics:
    """What the Parquet sink counts."""

    rows_written: Counter
    files_written: Counter
    records_dead_lettered: Counter
    batch_seconds: Histogram
    last_commit_timestamp: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SinkMetrics:
        """Register the sink's metrics in ``registry``."""
        return cls(
            rows_written=Counter(
                "autocap_sink_rows_written",
                "Rows written to the lake.",
                ["table"],
                registry=registry,
            ),
            files_written=Counter(
                "autocap_sink_files_written", "Parquet files written.", ["table"], registry=registry
            ),
            records_dead_lettered=Counter(
                "autocap_sink_records_dead_lettered",
                "Records the sink could not decode.",
                ["reason"],
                registry=registry,
            ),
            batch_seconds=Histogram(
                "autocap_sink_batch_duration_seconds",
                "Time to write one batch and commit its offsets.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            last_commit_timestamp=Gauge(
                "autocap_sink_last_commit_timestamp_seconds",
                "Unix time of the last offset commit.",
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class MaterializerMetrics:
    """What the materializer counts (it rebuilds warehouse tables from the lake)."""

    run_seconds: Histogram
    runs: Counter
    last_success_timestamp: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MaterializerMetrics:
        """Register the materializer's metrics in ``registry``."""
        return cls(
            run_seconds=Histogram(
                "autocap_materializer_run_duration_seconds",
                "Time one materializer run took, failed runs included.",
                buckets=_RUN_BUCKETS,
                registry=registry,
            ),
            runs=Counter(
                "autocap_materializer_runs",
                "Materializer runs, by outcome (success or failure).",
                ["outcome"],
                registry=registry,
            ),
            last_success_timestamp=Gauge(
                "autocap_materializer_last_success_timestamp_seconds",
                "Unix time the last successful materializer run finished.",
                registry=registry,
            ),
        )


def process_registry() -> CollectorRegistry:
    """A fresh registry carrying the standard ``process_*`` and ``python_info`` series
    (start time, memory, CPU, open files): restarts and leaks show up in Prometheus."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serve ``registry`` on ``http://host:port/metrics`` from a daemon thread."""
    start_http_server(port, addr=host, registry=registry)
