"""Pure parts of the health exporter and `autocap status`: lag arithmetic, freshness from
real Parquet files, rates from two scrapes, and the metric objects' exposition."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from pipeline.errors import ConfigError
from pipeline.health import group_topics, newest_received_at, partition_lag, unindexed_files
from pipeline.metrics import MaterializerMetrics, process_registry
from pipeline.settings import Settings, load_settings
from pipeline.status import from_scrapes, render, role_urls
from pipeline.warehouse.event_index import build_index, index_events, index_path
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import EVENT_SCHEMA, records_to_table


def test_partition_lag() -> None:
    assert partition_lag(end=10, committed=3, beginning=0) == 7
    assert partition_lag(end=10, committed=None, beginning=0) == 10  # never committed
    assert partition_lag(end=10, committed=None, beginning=4) == 6  # older records expired
    assert partition_lag(end=10, committed=2, beginning=4) == 6  # committed before expiry
    assert partition_lag(end=10, committed=10, beginning=0) == 0


def test_group_topics_names_both_groups_and_their_inputs() -> None:
    groups = group_topics(Settings(topic_prefix="p"))
    assert groups["p-stream"] == ("p.raw", "p.identities", "p.enriched", "p.account_updates")
    assert set(groups["p-sink"]) == {
        *(
            "p.enriched",
            "p.sessions",
            "p.identities",
            "p.profiles",
            "p.accounts",
            "p.cohort_changes",
        )
    }
    stage1_only = group_topics(Settings(topic_prefix="p", worker_stage2=False))
    assert stage1_only["p-stream"] == ("p.raw", "p.identities")


def _event(event_id: str, received: str) -> dict[str, str]:
    return {"event_id": event_id, "type": "track", "timestamp": received, "received_at": received}


def test_newest_received_at_reads_the_newest_files_footers(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.ensure_table("events", EVENT_SCHEMA)
    assert newest_received_at(Lake(tmp_path)) is None  # only the empty schema file
    assert newest_received_at(Lake(tmp_path), "missing") is None
    lake.write("events", records_to_table([_event("a", "2026-01-01T10:00:00Z")]))
    lake.write(
        "events",
        records_to_table(
            [_event("b", "2026-01-01T12:00:00Z"), _event("c", "2026-01-01T11:00:00Z")]
        ),
    )
    expected = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()
    assert newest_received_at(Lake(tmp_path)) == expected


def test_unindexed_files_counts_live_events_files_without_an_index(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert unindexed_files(lake) == 0  # no lake yet
    lake.ensure_table("events", EVENT_SCHEMA)
    first = lake.write("events", records_to_table([_event("a", "2026-01-01T10:00:00Z")]))
    lake.write("events", records_to_table([_event("b", "2026-01-01T11:00:00Z")]))
    assert unindexed_files(lake) == 2
    build_index(first, index_path(lake, first))
    assert unindexed_files(lake) == 1
    index_events(lake)
    assert unindexed_files(lake) == 0


def _exposition(counters: dict[str, float]) -> bytes:
    lines = []
    for name, value in counters.items():
        lines += [f"# TYPE {name.removesuffix('_total')} counter", f"{name} {value}"]
    return ("\n".join(lines) + "\n").encode()


def test_status_rates_come_from_the_difference_of_two_scrapes() -> None:
    settings = Settings()
    urls = role_urls(settings)
    scrapes = {
        urls["collector"]: [
            _exposition({"autocap_collector_events_accepted_total": 100}),
            _exposition({"autocap_collector_events_accepted_total": 140}),
        ],
        # The worker restarted between the scrapes: its counter went down, no rate.
        urls["worker"]: [
            _exposition({"autocap_worker_events_processed_total": 500}),
            _exposition({"autocap_worker_events_processed_total": 3}),
        ],
        urls["health"]: [  # scraped once, at the end: only counters need two scrapes
            b'autocap_consumer_lag_messages{group="g",topic="t",partition="0"} 5\n'
            b'autocap_consumer_lag_messages{group="g",topic="t",partition="1"} 7\n'
            b"autocap_pipeline_freshness_seconds 4.5\nautocap_kafka_up 1\n",
        ],
    }

    timeouts: dict[str, float] = {}

    def fetch(url: str, timeout: float) -> bytes:
        timeouts[url] = timeout
        if url not in scrapes:  # the sink and the materializer are down
            raise ConnectionRefusedError(url)
        return scrapes[url].pop(0)

    ticks = iter([0.0, 2.0])
    status = from_scrapes(settings, 2.0, fetch, sleep=lambda s: None, clock=lambda: next(ticks))
    assert status.roles == {
        "collector": True,
        "worker": True,
        "sink": False,
        "health": True,
        "materializer": False,
    }
    # The health exporter asks Kafka while scraped (5 s per step when Kafka is down).
    assert timeouts[urls["health"]] > 15 and timeouts[urls["collector"]] == 2.0
    assert status.throughput["accepted_eps"] == 20.0
    assert status.throughput["processed_eps"] is None
    assert status.throughput["rows_written_eps"] is None
    assert status.lag == {"g": 12.0}
    assert status.freshness_seconds == 4.5
    assert status.kafka_up is True
    assert status.alerts is None
    assert render(status).title == "autocap status"


def test_process_and_materializer_metrics_pass_promtool() -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found: ./ops/bootstrap.sh --test installs Debian `prometheus`")
    registry = process_registry()
    metrics = MaterializerMetrics.create(registry)
    metrics.runs.labels("success").inc()
    metrics.run_seconds.observe(12.0)
    metrics.last_success_timestamp.set_to_current_time()
    text = generate_latest(registry)
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"autocap_materializer_last_success_timestamp_seconds" in text
    assert b"process_start_time_seconds" in text


def test_prometheus_url_must_be_http() -> None:
    assert load_settings(env={"AUTOCAP_PROMETHEUS_URL": "http://prom:9090"}).prometheus_url
    with pytest.raises(ConfigError, match="AUTOCAP_PROMETHEUS_URL: expected an http"):
        load_settings(env={"AUTOCAP_PROMETHEUS_URL": "prom:9090"})
