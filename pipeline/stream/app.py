"""The Faust app for stage 1, built from settings (no module-level app, no globals).

Agents are thin: decode, call the pure rule, send. Anything undecodable is dead-lettered and
acknowledged so one bad record never blocks a partition.
"""

from __future__ import annotations

import time
from typing import Any

import faust
import orjson

from pipeline.deadletter import dead_letter_record
from pipeline.errors import InvalidEvent
from pipeline.metrics import WorkerMetrics
from pipeline.settings import Settings
from pipeline.stream.enrich import decode_raw, enrich
from pipeline.timeutil import utc_now

__all__ = ["create_app"]


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    # Values stay bytes: we decode with orjson ourselves and own the error handling.
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def create_app(settings: Settings, bootstrap: str, metrics: WorkerMetrics) -> faust.App:
    """Build the stage-1 Faust app: ``raw`` → ``enriched`` (keyed by person_id)."""
    session_timeout = settings.consumer_session_timeout_s
    app = faust.App(
        settings.group_id("stream"),
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir / "worker"),
        processing_guarantee="exactly_once" if settings.kafka_idempotence else "at_least_once",
        producer_acks=-1,
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=max(0.1, session_timeout / 5),
        broker_rebalance_timeout=max(2.0, session_timeout * 2),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=False,
        autodiscover=False,
    )
    raw = _raw_topic(app, settings.topic("raw"), settings.partitions)
    enriched = _raw_topic(app, settings.topic("enriched"), settings.partitions)
    dead_letter = _raw_topic(app, settings.topic("dead_letter"), settings.partitions)

    async def stage1(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            try:
                record = decode_raw(event.value)
            except InvalidEvent as exc:
                metrics.events_dead_lettered.labels("stage1", exc.rule).inc()
                await dead_letter.send(
                    value=dead_letter_record(
                        stage="stage1",
                        reason=exc.rule,
                        field=exc.field,
                        message=str(exc),
                        payload=event.value or b"",
                        received_at=utc_now(),
                    )
                )
                continue
            out = enrich(record)
            await enriched.send(key=str(out["person_id"]).encode(), value=orjson.dumps(out))
            metrics.events_processed.labels("stage1").inc()
            metrics.processing_seconds.labels("stage1").observe(time.perf_counter() - started)

    app.agent(raw, name="stage1")(stage1)
    return app
