"""The funnel reads every copy of the step events and deduplicates only repeated event_ids:
its results must equal the same funnel on a lake deduplicated first (``lake_events``: the
earliest-received copy per event_id), with copies spread over files, copies whose
received_at (and so timestamp) differ, an earlier-received copy in a later file, copies
straddling --since/--until, repeated step names and defined events."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.event_index import build_index, index_path
from pipeline.warehouse.funnel_spec import FunnelSpec
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import records_to_table
from tests.unit.funnel_lake import T0, funnel_json, iso


def _record(i: int, person: str, name: str, ms: int, received_ms: int) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "type": "track",
        "event": name,
        "anonymous_id": person,
        "person_id": person,
        "timestamp": iso(T0 + ms),
        "received_at": iso(T0 + received_ms),
        "properties": {"plan": f"plan{i % 3}"},
        # Group calls: some events name an account; a person's latest one counts, so a
        # replayed copy with a later time must not decide it.
        "account_id": f"acct{(int(person[1:]) + i) % 5}" if i % 3 == 0 else None,
        # Defined events: every "x" with an even id is also a "Big X".
        "defined_events": ["Big X"] if name == "x" and i % 2 == 0 else [],
    }


def lakes(root: Path, seed: int, indexed: int = 0) -> tuple[Path, Path, int]:
    """A lake with duplicated events (its first ``indexed`` files of 4 indexed) and the same
    lake deduplicated first (not indexed); returns both catalogs and how many copies were
    added."""
    rng = random.Random(seed)
    originals = []
    for i in range(500):
        ms = rng.randrange(0, 8_000, 100)
        name = rng.choice(["A", "B", "C", "x", "y"])
        originals.append(_record(i, f"p{rng.randrange(60)}", name, ms, ms + 50))
    copies = []
    for record in rng.sample(originals, 150):
        copy = dict(record)
        shift = rng.choice([0, 0, 700, -700, 1_500])
        if shift:  # a retry: another received_at, so another event time
            base = datetime.fromisoformat(record["timestamp"]).timestamp() * 1000 - T0
            copy["timestamp"] = iso(int(base) + shift)
            copy["received_at"] = iso(int(base) + shift + (-40 if shift < 0 else 60))
            if record["event"] == "x":  # replayed under other definitions
                copy["defined_events"] = [] if record["defined_events"] else ["Big X"]
        copies.append(copy)
    lake = Lake(root / "dup" / "lake")
    publish_catalog(root / "dup" / "warehouse.duckdb", lake)
    for part in (originals[:250], originals[250:], copies[:75], copies[75:]):
        path = lake.write("events", records_to_table(part))
        if indexed > 0:
            indexed -= 1
            build_index(path, index_path(lake, path))
    dup = publish_catalog(root / "dup" / "warehouse.duckdb", lake)
    con = duckdb.connect(str(dup), read_only=True)
    try:
        deduplicated = con.sql("SELECT * FROM lake_events").to_arrow_table()
    finally:
        con.close()
    clean = Lake(root / "clean" / "lake")
    publish_catalog(root / "clean" / "warehouse.duckdb", clean)
    clean.write("events", deduplicated)
    return dup, publish_catalog(root / "clean" / "warehouse.duckdb", clean), len(copies)


SPECS = [
    {"steps": "A,B,C", "window": "2s"},
    {"steps": "A,B,C", "window": "2s", "mode": "strict"},
    {"steps": "A,B,C", "window": "2s", "mode": "unordered"},
    {"steps": "A,B,C", "window": "3s", "exclude": "y:1-2"},
    {"steps": "A,B,A", "window": "3s"},
    {"steps": "A,B,C", "window": "2s", "breakdown": "properties.plan"},
    {"steps": "A,B,C", "window": "2s", "by": "account"},
    {"steps": "A,B", "window": "2s", "trend": "day"},
    {"steps": "A,Big X,C", "window": "3s"},
    {"steps": "A,B,C", "window": "2s", "since": iso(T0 + 2_000), "until": iso(T0 + 6_000)},
]


@pytest.mark.parametrize(("seed", "indexed"), [(1, 0), (2, 0), (1, 2), (2, 4)])
def test_equal_to_deduplicating_first(tmp_path: Path, seed: int, indexed: int) -> None:
    # Files read through the events index (some or all of them) or the lake alone.
    dup, clean, added = lakes(tmp_path, seed, indexed)
    con = duckdb.connect(str(dup), read_only=True)
    try:
        raw, unique = con.sql(
            "SELECT count(*), count(DISTINCT event_id) FROM lake_events_raw"
        ).fetchall()[0]
    finally:
        con.close()
    assert raw - unique == added, "the lake must really hold the duplicates"
    for raw_spec in SPECS:
        spec = FunnelSpec.from_mapping(raw_spec)
        ours, reference = funnel_json(dup, spec), funnel_json(clean, spec)
        assert ours == reference, raw_spec
        assert ours["steps"][1]["count"] > 0, f"{raw_spec}: the data must exercise step 2"
