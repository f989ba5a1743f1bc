"""The long-running roles (`autocap broker|collector|worker|sink`), one function each.

Every role that talks to Kafka first waits for metadata (failing fast with one clear line)
and makes sure the topics exist, so each role can also be started on its own.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics, wait_for_kafka
from pipeline.errors import BrokerStartFailed, ConfigError
from pipeline.metrics import SinkMetrics, process_registry, serve_metrics
from pipeline.processes import ensure_port_free
from pipeline.settings import Settings

__all__ = ["run_broker", "run_collector_role", "run_health", "run_sink", "run_worker_role"]

log = logging.getLogger(__name__)


#: A role asked to stop (SIGTERM/SIGINT) that has not exited after this long exits anyway:
#: when `autocap up` is killed every child gets SIGTERM at once and the broker goes too, so
#: a client library may wait on a dead connection. Nothing is lost by leaving: files are
#: written atomically and offsets are committed only after them.
_STOP_GRACE_S = 10.0


def _stop_on_signals(role: str, grace_s: float = _STOP_GRACE_S) -> threading.Event:
    stop = threading.Event()

    def give_up() -> None:
        print(f"{role}: did not stop within {grace_s:g}s; exiting", file=sys.stderr)
        os._exit(3)

    def handler(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            timer = threading.Timer(grace_s, give_up)
            timer.daemon = True
            timer.start()
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def connect(settings: Settings) -> str:
    """The bootstrap servers, once they answer and the topics exist."""
    if not settings.kafka_bootstrap:
        raise ConfigError(
            "AUTOCAP_KAFKA_BOOTSTRAP is not set: separate roles need a Kafka cluster"
            " (start one with `autocap broker`, or run everything with `autocap up`)"
        )
    wait_for_kafka(settings.kafka_bootstrap, settings.kafka_connect_timeout_s)
    ensure_topics(settings, settings.kafka_bootstrap)
    return settings.kafka_bootstrap


def run_broker(settings: Settings) -> None:
    """Run the embedded Tansu broker in the foreground until SIGTERM/Ctrl-C."""
    stop = _stop_on_signals("autocap broker")
    broker = EmbeddedBroker(settings.broker_host, settings.broker_port)
    broker.start(timeout_s=max(15.0, settings.kafka_connect_timeout_s))
    print(f"autocap broker: Tansu listening on {broker.bootstrap} (memory storage)", flush=True)
    try:
        while not stop.wait(0.5):
            if (code := broker.poll()) is not None:
                raise BrokerStartFailed(f"Tansu on {broker.bootstrap} exited with code {code}")
    finally:
        broker.stop()
    print("autocap broker: stopped", flush=True)


def run_collector_role(settings: Settings) -> None:
    """Run the HTTP collector."""
    from collectors.http.server import run_collector  # keeps `autocap query` start-up light

    if not settings.write_keys:
        raise ConfigError("no write keys: set AUTOCAP_WRITE_KEYS (comma-separated)")
    ensure_port_free(
        settings.collector_host, settings.collector_port, "the collector", "AUTOCAP_COLLECTOR_PORT"
    )
    if settings.kafka_bootstrap and any(settings.spool_dir.glob("*.spool")):
        # Restarted during a Kafka outage: take events into the spool now, drain later.
        log.warning(
            "events are spooled in %s; starting without waiting for Kafka", settings.spool_dir
        )
        run_collector(settings, settings.kafka_bootstrap)
    else:
        run_collector(settings, connect(settings))


def run_worker_role(settings: Settings) -> None:
    """Run the stream worker (Faust)."""
    from pipeline.stream.worker import run_worker

    ensure_port_free(
        settings.metrics_host,
        settings.worker_metrics_port,
        "the worker's metrics",
        "AUTOCAP_WORKER_METRICS_PORT",
    )
    run_worker(settings, connect(settings))


def run_sink(settings: Settings) -> None:
    """Run the Parquet sink; publishes the analysts' catalog first."""
    from pipeline.warehouse.catalog import CatalogPublisher
    from pipeline.warehouse.compact import CompactionPolicy, Compactor
    from pipeline.warehouse.lake import Lake
    from pipeline.warehouse.sink import EventSink

    ensure_port_free(
        settings.metrics_host,
        settings.sink_metrics_port,
        "the sink's metrics",
        "AUTOCAP_SINK_METRICS_PORT",
    )
    bootstrap = connect(settings)
    stop = _stop_on_signals("autocap sink")
    lake = Lake(settings.lake_dir)
    publisher = CatalogPublisher(settings.warehouse_path, lake, settings.catalog_refresh_s)
    publisher.publish()
    registry = process_registry()
    serve_metrics(registry, settings.metrics_host, settings.sink_metrics_port)
    sink = EventSink(settings, bootstrap, lake, SinkMetrics.create(registry), publisher)
    print(f"autocap sink: writing stage 1's topics to {lake.root}", flush=True)
    if settings.compact_interval_s > 0:
        policy = CompactionPolicy(grace_s=settings.compact_grace_s)
        compactor = Compactor(lake, publisher, policy)
        threading.Thread(
            target=compactor.run,
            args=(stop, settings.compact_interval_s),
            name="autocap-compactor",
            daemon=True,
        ).start()
    sink.run(stop)
    print("autocap sink: stopped", file=sys.stderr, flush=True)


def run_materializer(settings: Settings, once: bool = False, full: bool = False) -> None:
    """Keep the published tables (defined-event tags, funnels) fresh; ``once``: one run."""
    from pipeline.definitions import load_definitions
    from pipeline.metrics import MaterializerMetrics
    from pipeline.warehouse.catalog import CatalogPublisher, published_lake
    from pipeline.warehouse.lake import Lake
    from pipeline.warehouse.materialize import Materializer, MaterializeReport

    lake = Lake(settings.lake_dir)
    publisher = CatalogPublisher(settings.warehouse_path, lake, 0.0)
    materializer = Materializer(
        lake,
        published_lake(lake),
        publisher,
        settings.warehouse_path,
        lambda: load_definitions(settings.definitions_path),
        grace_s=settings.compact_grace_s,
    )
    if once:
        report = materializer.run_once(full=full)
        funnels = ", ".join(f"funnel_{n}" for n in report.funnels) or "no funnels"
        funnels += ", " + (", ".join(f"segment_{n}" for n in report.segments) or "no segments")
        print(
            f"autocap materialize: tagged {report.events_tagged} events"
            f" ({'full' if report.full else 'incremental'}), {funnels}, in {report.seconds:.1f}s",
            flush=True,
        )
        return
    ensure_port_free(
        settings.metrics_host,
        settings.materializer_metrics_port,
        "the materializer's metrics",
        "AUTOCAP_MATERIALIZER_METRICS_PORT",
    )
    stop = _stop_on_signals("autocap materialize")
    registry = process_registry()
    metrics = MaterializerMetrics.create(registry)
    serve_metrics(registry, settings.metrics_host, settings.materializer_metrics_port)

    def on_run(report: MaterializeReport | None) -> None:
        if report is None:
            metrics.runs.labels("failure").inc()
            return
        metrics.runs.labels("success").inc()
        metrics.run_seconds.observe(report.seconds)
        metrics.last_success_timestamp.set_to_current_time()

    print(f"autocap materialize: every {settings.materialize_interval_s:g}s", flush=True)
    materializer.run(stop, settings.materialize_interval_s, on_run)
    print("autocap materialize: stopped", file=sys.stderr, flush=True)


def run_health(settings: Settings) -> None:
    """Run the health exporter: consumer lag and freshness on its own /metrics.

    It does not wait for Kafka: reporting ``autocap_kafka_up 0`` while Kafka is down is
    its job.
    """
    from pipeline.cluster import parse_bootstrap
    from pipeline.health import HealthCollector

    if not settings.kafka_bootstrap:
        raise ConfigError(
            "AUTOCAP_KAFKA_BOOTSTRAP is not set: the health exporter watches a Kafka cluster"
        )
    parse_bootstrap(settings.kafka_bootstrap)  # a malformed address fails now, clearly
    ensure_port_free(
        settings.metrics_host,
        settings.health_metrics_port,
        "the health exporter's metrics",
        "AUTOCAP_HEALTH_METRICS_PORT",
    )
    stop = _stop_on_signals("autocap health")
    registry = process_registry()
    collector = HealthCollector(settings, settings.kafka_bootstrap)
    registry.register(collector)
    serve_metrics(registry, settings.metrics_host, settings.health_metrics_port)
    print(
        f"autocap health: lag and freshness on"
        f" http://{settings.metrics_host}:{settings.health_metrics_port}/metrics",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        collector.reader.close()
    print("autocap health: stopped", file=sys.stderr, flush=True)
