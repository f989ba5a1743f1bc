"""A small real lake + catalog for funnel tests: events given as (person, event, ms)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import records_to_table

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def build_lake(root: Path, events: Iterable[tuple[str, str, int]], **extra: dict) -> Path:
    """Write events (person, event name, ms since T0) and publish ``warehouse.duckdb``."""
    lake = Lake(root / "lake")
    warehouse = root / "warehouse.duckdb"
    publish_catalog(warehouse, lake)
    records = [
        {
            "event_id": f"e{i}",
            "type": "track",
            "event": name,
            "anonymous_id": person,
            "person_id": person,
            "timestamp": iso(T0 + ms),
            "received_at": iso(T0 + ms),
            **extra.get(f"e{i}", {}),
        }
        for i, (person, name, ms) in enumerate(events)
    ]
    if records:
        lake.write("events", records_to_table(records))
        publish_catalog(warehouse, lake)  # the catalog names the files it reads
    return warehouse
