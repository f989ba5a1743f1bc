"""Forget records for running workers (pipeline.forget.workers): their shape, where each
goes, and that agents and the sink tell them from events."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import orjson
from aiokafka.partitioner import DefaultPartitioner as CollectorPartitioner
from kafka.partitioner.default import DefaultPartitioner as KafkaPythonPartitioner

from pipeline.forget.keys import PersonKeys
from pipeline.forget.record import forget_keys, forget_record, is_forget
from pipeline.forget.workers import forget_records
from pipeline.seeds import is_seed
from pipeline.settings import Settings
from pipeline.warehouse.batches import _events_only


def test_a_forget_record_names_its_keys_and_nothing_else_reads_as_one() -> None:
    record = forget_record(["b", "a"])
    assert is_forget(record) and not is_seed(record)
    assert forget_keys(record) == ["a", "b"]
    event = orjson.dumps({"event_id": "e", "forget": {"keys": ["a"]}})  # not the first key
    assert forget_keys(event) is None and forget_keys(None) is None
    for malformed in (b'{"forget": 1}', b'{"forget":{"keys":"a"}}', b'{"forget":{"keys":[1,"a"]'):
        assert forget_keys(malformed) in ([], ["a"]), malformed
    assert forget_keys(b'{"forget":{"keys":[1,"a"]}}') == ["a"]


def test_each_id_gets_a_record_on_the_topic_and_key_that_holds_its_state(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, topic_prefix="fz")
    keys = PersonKeys(
        "u-1",
        {
            "anonymous_id": frozenset({"anon-1"}),
            "user_id": frozenset({"u-1"}),
            "person_id": frozenset({"u:u-1", "a:anon-1"}),
            "event_id": frozenset({"e-1"}),
            "account_id": frozenset({"acme"}),
        },
    )
    got = [(topic, key, forget_keys(value)) for topic, key, value in forget_records(settings, keys)]
    assert got == [
        ("fz.raw", b"anon-1", ["anon-1"]),
        ("fz.raw", b"u-1", ["user:u-1"]),
        ("fz.identities", b"a:anon-1", ["a:anon-1"]),
        ("fz.enriched", b"a:anon-1", ["a:anon-1"]),
        ("fz.identities", b"u:u-1", ["u:u-1"]),
        ("fz.enriched", b"u:u-1", ["u:u-1"]),
        ("fz.account_updates", b"acme", ["a:anon-1", "u:u-1"]),
    ]


def test_the_forget_producer_and_the_collector_pick_the_same_partition() -> None:
    """kafka-python (forget) and aiokafka (collector) both hash keys with murmur2."""
    partitions = list(range(12))
    cluster = SimpleNamespace(
        topics=lambda: {"t"},
        partitions_for_topic=lambda _t: set(partitions),
        available_partitions_for_topic=lambda _t: set(partitions),
    )
    for key in (b"anon-1", b"u:u-1", "é".encode(), b"x" * 300):
        forget = KafkaPythonPartitioner().partition("t", key, key, None, None, cluster)
        assert forget == CollectorPartitioner()(key, partitions, partitions), key


def test_the_sink_keeps_forget_records_and_seeds_out_of_the_lake() -> None:
    event = b'{"event_id":"e"}'
    values = [event, forget_record(["p"]), b'{"seed":{}}', None]
    assert _events_only(values) == [event, None]
