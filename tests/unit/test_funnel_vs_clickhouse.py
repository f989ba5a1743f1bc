"""Ordered and strict funnels equal ClickHouse's windowFunnel (chdb, in-process) person by
person, on generated edge cases: ties, repeats, exact window edges, out-of-order steps,
step 1 repeated later, people with only later steps, unrelated events in between."""

from __future__ import annotations

import random
from pathlib import Path

import chdb
import duckdb
import pytest

from pipeline.warehouse.funnel import run_funnel
from pipeline.warehouse.funnel_spec import FunnelSpec
from tests.unit.funnel_lake import build_lake

STEPS = ("A", "B", "C")
WINDOW_MS = 2_000


def generate(seed: int, people: int = 150) -> list[tuple[str, str, int]]:
    """Times on a 250 ms grid so ties and exact window edges (2000 ms) are common."""
    rng = random.Random(seed)
    events = []
    for p in range(people):
        names = rng.choice([STEPS, ("B", "C"), (*STEPS, "x", "y"), ("A", "A", "B", "C", "x")])
        for _ in range(rng.randint(1, 9)):
            events.append((f"p{p:03d}", rng.choice(names), rng.randrange(0, 6_000, 250)))
    rng.shuffle(events)  # the lake's order must not matter
    return events


def clickhouse_levels(glob: str, mode: str) -> dict[str, int]:
    """windowFunnel per person over the same Parquet (the lake's files, in their order)."""
    options = "'strict_increase'" + (", 'strict_order'" if mode == "strict" else "")
    rows = chdb.query(
        f"""
        SELECT person_id, windowFunnel({WINDOW_MS}, {options})(
            toUInt64(toUnixTimestamp64Milli(timestamp)), event = 'A', event = 'B', event = 'C')
        FROM file('{glob}', Parquet)
        GROUP BY person_id
        """,
        "CSV",
    )
    out = {}
    for line in str(rows).strip().splitlines():
        person, level = line.split(",")
        out[person.strip('"')] = int(level)
    return out


def our_levels(warehouse: Path, mode: str) -> dict[str, int]:
    """Per person, through the real SQL: a breakdown by anonymous_id (one per person)."""
    spec = FunnelSpec.from_mapping(
        {"steps": STEPS, "window": f"{WINDOW_MS}ms", "mode": mode, "breakdown": "anonymous_id"}
    )
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        result = run_funnel(con, spec)
    finally:
        con.close()
    levels = {}
    for group in result.breakdown:
        counts = [s.count for s in group.steps]
        assert counts[0] == 1, "one person per anonymous_id"
        levels[group.value] = sum(counts)
    return levels


@pytest.mark.parametrize("mode", ["ordered", "strict"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_levels_equal_windowfunnel(tmp_path: Path, mode: str, seed: int) -> None:
    warehouse = build_lake(tmp_path, generate(seed))
    glob = str(tmp_path / "lake" / "events" / "*.parquet")
    theirs = {p: level for p, level in clickhouse_levels(glob, mode).items() if level > 0}
    ours = our_levels(warehouse, mode)
    assert ours == theirs
    assert {1, 2, 3} <= set(ours.values()), "the data must exercise every level"


def test_hand_picked_edges(tmp_path: Path) -> None:
    events = [
        ("edge", "A", 0),
        ("edge", "B", 1000),
        ("edge", "C", 2000),  # C exactly at the edge
        ("late", "A", 0),
        ("late", "B", 1000),
        ("late", "C", 2001),  # 1 ms too late
        ("tie", "A", 0),
        ("tie", "B", 0),
        ("tie", "C", 0),  # same ms: only step 1
        ("retry", "A", 0),
        ("retry", "B", 500),
        ("retry", "A", 1500),
        ("retry", "B", 2500),
        ("retry", "C", 3000),  # the second attempt converts
        ("order", "B", 0),
        ("order", "C", 100),
        ("order", "A", 200),  # out of order
    ]
    warehouse = build_lake(tmp_path, events)
    glob = str(tmp_path / "lake" / "events" / "*.parquet")
    ours = our_levels(warehouse, "ordered")
    assert ours == {"edge": 3, "late": 2, "tie": 1, "retry": 3, "order": 1}
    assert ours == clickhouse_levels(glob, "ordered")
