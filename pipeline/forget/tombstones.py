"""Tombstones for a person's keys in the stream's compacted changelog topics.

Faust keeps each table in a compacted changelog topic (``<app id>-<table>-changelog``,
JSON keys). A ``None`` value for a key deletes it: compaction drops the older values, and
a worker restoring the table skips the key. The tombstone goes to the partition the key was
found in, so it lands where the table's owner (and compaction) look.
"""

from __future__ import annotations

import time

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.errors import ForgetError
from pipeline.forget.keys import PersonKeys
from pipeline.settings import Settings

__all__ = ["changelog_topics", "tombstone_keys"]


def changelog_topics(settings: Settings, bootstrap: str) -> list[str]:
    """The stream worker's changelog topics (its app id is the ``stream`` group id)."""
    app_id = settings.group_id("stream")
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        topics = probe.topics()
    finally:
        probe.close()
    return sorted(t for t in topics if t.startswith(app_id + "-") and t.endswith("-changelog"))


def _key_text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        key = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")
    return key if isinstance(key, str) else None


def tombstone_keys(
    settings: Settings, bootstrap: str, keys: PersonKeys, timeout_s: float = 120.0
) -> int:
    """Produce a tombstone for every changelog key that is one of the person's ids;
    returns how many (topic, partition, key) were tombstoned."""
    wanted = keys.people_ids
    topics = changelog_topics(settings, bootstrap)
    if not topics:
        return 0
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    found: set[tuple[str, int, bytes]] = set()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise ForgetError(
                    f"forget: could not read the changelogs within {timeout_s:g}s "
                    f"({len(remaining)} partitions unread); nothing was tombstoned"
                )
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    if _key_text(record.key) in wanted and record.key is not None:
                        found.add((tp.topic, tp.partition, record.key))
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()
    if found:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            for topic, partition, key in sorted(found):
                producer.send(topic, key=key, value=None, partition=partition)
            producer.flush(30)
        finally:
            producer.close()
    return len(found)
