"""The cohort benchmark on a small lake: our cohort materialization and its plain-SQL
baseline (``bench/warehouse/cohorts.sql``) find the same members in all 20 cohorts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bench.warehouse.cohorts import World, baseline_members, differences, our_members


@pytest.mark.parametrize("seed", [3, 11])
def test_ours_and_the_sql_baseline_find_the_same_members(tmp_path: Path, seed: int) -> None:
    world = World(tmp_path, 8_000, 500, seed=seed)
    as_of = world.as_of()
    with world.connect() as con:
        ours = our_members(con, world.definitions, as_of)
        theirs = baseline_members(con, world.definitions, as_of)
    assert len(ours) == len(world.definitions.cohorts) == 20
    assert differences(ours, theirs) == {}
    # Not trivially equal: most cohorts have members and none holds everyone.
    everyone = 500
    assert sum(1 for members in ours.values() if members) >= 16
    assert all(len(members) < everyone for members in ours.values())


def test_a_difference_is_reported_per_cohort(tmp_path: Path) -> None:
    world = World(tmp_path, 4_000, 300)
    as_of = world.as_of()
    with world.connect() as con:
        theirs = baseline_members(con, world.definitions, as_of)
        earlier = our_members(con, world.definitions, as_of - timedelta(days=3))
    found = differences(earlier, theirs)
    assert found and all(a + b > 0 for a, b in found.values())
    assert differences({"c": {"p1", "p2"}}, {"c": {"p2", "p3"}, "d": set()}) == {"c": (1, 1)}
