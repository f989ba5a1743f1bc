"""Faust's own sensor hooks, exported as ``WorkerMetrics`` in base units.

Faust calls a sensor around every record, stream event, send, commit and rebalance. Its
bundled Prometheus monitor reports milliseconds and unbounded names (``promtool check
metrics`` refuses them), so the worker installs this sensor instead. Table sizes and the
partitions a worker holds are read when Prometheus scrapes, not on every change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

import faust
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.metrics import WorkerMetrics

__all__ = ["WorkerSensor", "WorkerStateCollector", "agents_by_topic", "instrument"]

log = logging.getLogger(__name__)


def agents_by_topic(app: faust.App) -> dict[str, str]:
    """Which agent consumes each topic (agent names are fixed in code: bounded labels)."""
    mapping: dict[str, str] = {}
    for agent in app.agents.values():
        for topic in getattr(agent.channel, "topics", ()):
            mapping[str(topic)] = str(agent.name).rsplit(".", 1)[-1]
    return mapping


class WorkerSensor(faust.Sensor):
    """Counts records in and out, per-agent events and their latency, commits, rebalances."""

    def __init__(self, metrics: WorkerMetrics, agents: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.agents = dict(agents)

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.metrics.messages_received.labels(tp.topic).inc()

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        agent = self.agents.get(tp.topic)
        # Streams that are not agents (table changelog readers) are not "processing".
        return None if agent is None else {"agent": agent, "started": time.perf_counter()}

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        if not state:
            return
        self.metrics.events_processed.labels(state["agent"]).inc()
        self.metrics.processing_seconds.labels(state["agent"]).observe(
            time.perf_counter() - state["started"]
        )

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> Any:
        return topic

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        self.metrics.messages_sent.labels(str(state)).inc()

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        self.metrics.send_errors.labels(str(state)).inc()

    def on_commit_initiated(self, consumer: Any) -> Any:
        return time.perf_counter()

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        self.metrics.commit_seconds.observe(time.perf_counter() - state)

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        self.metrics.rebalances.inc()
        return {}


class WorkerStateCollector(Collector):
    """Keys held per table and partitions assigned, read at scrape time."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        keys = GaugeMetricFamily(
            "autocap_worker_table_keys",
            "Keys held in a worker table (this worker's partitions only).",
            labels=["table"],
        )
        assigned = GaugeMetricFamily(
            "autocap_worker_assigned_partitions",
            "Partitions this worker actively owns (source topics and table changelogs).",
        )
        try:
            # Read from the metrics thread: len() of a table only reads its store's size.
            for table in list(self.app.tables.values()):
                keys.add_metric([str(table.name)], float(len(table)))
            assigned.add_metric([], float(len(self.app.assignor.assigned_actives())))
        except Exception:  # a scrape must never take the worker down
            log.debug("could not read worker state for metrics", exc_info=True)
        yield keys
        yield assigned


def instrument(app: faust.App, metrics: WorkerMetrics, registry: Any) -> WorkerSensor:
    """Attach the sensor to ``app`` and register the state collector in ``registry``."""
    sensor = WorkerSensor(metrics, agents_by_topic(app))
    app.sensors.add(sensor)
    registry.register(WorkerStateCollector(app))
    return sensor
