"""A small real lake + catalog for funnel tests: events given as (person, event, ms)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.funnel import run_funnel
from pipeline.warehouse.funnel_spec import FunnelSpec
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import records_to_table

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW = datetime(2026, 1, 2, tzinfo=UTC)  # after every test event: no one still in flight


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


def funnel_json(warehouse: Path, spec: FunnelSpec | dict[str, Any]) -> dict[str, Any]:
    """``run_funnel``'s JSON over ``warehouse`` (opened read-only, as analysts do) at NOW."""
    if isinstance(spec, dict):
        spec = FunnelSpec.from_mapping(spec)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return run_funnel(con, spec, now=NOW).to_json()
    finally:
        con.close()
