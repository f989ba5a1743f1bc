"""Telling running stream workers to forget a person.

Tombstones clear the changelogs, but a running worker keeps its tables in memory, and its
timers act on them without any new event: the idle-session timer would summarise the
person's open session into ``sessions``, the cohort timer would send their enter/exit
changes to ``cohort_changes``, and both land in the lake after ``autocap forget`` purged it.

So ``autocap forget`` also sends a *forget record* through each input topic, keyed like the
person's own records there, so it reaches the partition (and the worker) holding their
state, in order after their last event:

- ``raw``, keyed by each anonymous id (and user id): stage 1 deletes the device state;
- ``identities`` and ``enriched``, keyed by each person id: the device count, the profile
  and the cohort state are deleted;
- ``account_updates``, keyed by each account the person's events named: the account drops
  them from its members (its titles, roles, counts and scores no longer include them) and
  is sent again, with a higher version.

The record's format is in ``pipeline.forget.record``. Deleting a Faust table
key writes a tombstone to its changelog; deleting an absent one changes nothing, so a
replayed forget record is harmless. A client cannot send one: the collector builds every
``raw`` record from the fields it accepts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from pipeline.errors import ForgetError
from pipeline.forget.keys import PersonKeys
from pipeline.forget.record import forget_record
from pipeline.health import group_topics
from pipeline.identity import device_key
from pipeline.settings import Settings

__all__ = ["forget_records", "send_forget_records", "wait_processed"]


def forget_records(settings: Settings, keys: PersonKeys) -> Iterator[tuple[str, bytes, bytes]]:
    """``(topic, key, value)`` of every forget record for the person."""
    for anonymous_id in sorted(keys.of("anonymous_id")):
        key = device_key({"anonymous_id": anonymous_id})
        yield settings.topic("raw"), anonymous_id.encode(), forget_record([key])
    for user_id in sorted(keys.of("user_id")):
        key = device_key({"anonymous_id": None, "user_id": user_id})
        yield settings.topic("raw"), user_id.encode(), forget_record([key])
    persons = sorted(keys.of("person_id"))
    for person in persons:
        for topic in ("identities", "enriched"):
            yield settings.topic(topic), person.encode(), forget_record([person])
    for account in sorted(keys.of("account_id")):  # there, the keys are members to drop
        yield settings.topic("account_updates"), account.encode(), forget_record(persons)


def send_forget_records(
    settings: Settings, bootstrap: str, keys: PersonKeys, timeout_s: float = 30.0
) -> list[tuple[str, int, int]]:
    """Send every forget record (Kafka's default partitioner: the partition the collector
    and stage 1 use for the same key); returns where each landed: (topic, partition,
    offset)."""
    records = list(forget_records(settings, keys))
    if not records:
        return []
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        sent = [producer.send(topic, key=key, value=value) for topic, key, value in records]
        producer.flush(timeout_s)
        placed = [future.get(timeout=timeout_s) for future in sent]
    except KafkaError as exc:
        raise ForgetError(
            f"forget: Kafka did not take the forget records for running workers ({exc});"
            " run `autocap forget` again"
        ) from None
    finally:
        producer.close()
    return [(m.topic, m.partition, m.offset) for m in placed]


def wait_processed(
    settings: Settings, bootstrap: str, placed: list[tuple[str, int, int]], timeout_s: float
) -> bool:
    """Wait until the stream's consumer group has committed past every placed record of the
    topics it consumes (so the workers deleted the state); False if not within
    ``timeout_s`` (no worker running, or one far behind: it deletes the state when it gets
    there)."""
    consumed = set(group_topics(settings)[settings.group_id("stream")])
    waiting = {TopicPartition(t, p): o for t, p, o in placed if t in consumed}
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=settings.group_id("stream"),
        enable_auto_commit=False,
        client_id="autocap-forget",
    )
    deadline = time.monotonic() + timeout_s
    try:
        while waiting:
            for tp, offset in list(waiting.items()):
                if (consumer.committed(tp) or 0) > offset:
                    del waiting[tp]
            if waiting and time.monotonic() > deadline:
                return False
            time.sleep(0.2 if waiting else 0)
    finally:
        consumer.close()
    return True
