"""The health exporter's lag and Kafka reachability against the real embedded broker."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.health import HealthCollector, LagReader, group_topics
from pipeline.processes import free_port


def test_lag_counts_records_in_batches_and_uncommitted_partitions(
    broker: EmbeddedBroker, make_settings
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(partitions=2)
    ensure_topics(settings, broker.bootstrap)
    raw = settings.topic("raw")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(10):  # one batch per partition: Tansu's ListOffsets alone would say 1
        producer.send(raw, b"{}", partition=i % 2)
    producer.flush()
    producer.close()
    committer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=settings.group_id("stream"),
        enable_auto_commit=False,
    )
    committer.commit({TopicPartition(raw, 0): OffsetAndMetadata(3, "", -1)})
    committer.close()

    reader = LagReader(broker.bootstrap, timeout_s=5)
    try:
        lags = {(x.group, x.topic, x.partition): x.lag for x in reader.read(group_topics(settings))}
    finally:
        reader.close()
    stream, sink = settings.group_id("stream"), settings.group_id("sink")
    assert lags[(stream, raw, 0)] == 2  # 5 records, 3 committed
    assert lags[(stream, raw, 1)] == 5  # never committed: all of it
    assert lags[(stream, settings.topic("identities"), 0)] == 0
    assert lags[(sink, settings.topic("enriched"), 1)] == 0
    assert {g for g, _, _ in lags} == {stream, sink}

    registry = CollectorRegistry()
    registry.register(HealthCollector(settings, broker.bootstrap))
    text = generate_latest(registry).decode()
    committed = f'autocap_consumer_committed_offset{{group="{stream}",partition='
    assert committed + f'"0",topic="{raw}"}} 3.0' in text
    assert committed + f'"1",topic="{raw}"}}' not in text, "no series before a first commit"


def test_unreachable_kafka_reads_as_kafka_down(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(kafka_connect_timeout_s=1.0)
    registry = CollectorRegistry()
    registry.register(HealthCollector(settings, f"127.0.0.1:{free_port()}"))
    started = time.monotonic()
    text = generate_latest(registry).decode()
    assert time.monotonic() - started < 8  # within Prometheus' default scrape timeout
    assert "autocap_kafka_up 0.0" in text
    assert "\nautocap_consumer_lag_messages{" not in text
    assert "\nautocap_pipeline_freshness_seconds " not in text  # no lake yet: no sample
