"""Segments on a real warehouse (lake + catalog) holding generated populations with
planted structure: the toolkits recover what was planted, conditions select exactly who
they should, quality verdicts flip, personas find the planted groups."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from math import comb
from pathlib import Path

import duckdb
import pytest

from pipeline.errors import SegmentError
from pipeline.segments.engine import SegmentEngine
from pipeline.segments.personas import find_personas
from pipeline.segments.quality import check_segments, jaccard, wilson_interval
from pipeline.segments.rules import SegmentRules, parse_rules
from pipeline.segments.spec import SegmentDefinition, parse_segments
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.schema import COHORT_CHANGE_SCHEMA, records_to_table
from tests.segments_world import NOW, RFM_GROUPS, World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("segments"))


@pytest.fixture
def engine(world: World) -> Iterator[SegmentEngine]:
    con = duckdb.connect(str(world.warehouse), read_only=True)
    try:
        yield SegmentEngine(con, SegmentRules(), NOW)
    finally:
        con.close()


def _segment(item: dict[str, object]) -> SegmentDefinition:
    (segment,) = parse_segments([{"name": "s", **item}], "test")
    return segment


def test_b2b_tiers_are_recovered_exactly(world: World, engine: SegmentEngine) -> None:
    for tier in "ABC":
        members = engine.members(
            _segment({"of": "account", "where": {"property": "tier", "eq": tier}})
        )
        assert members == sorted(a for a, t in world.tiers.items() if t == tier)
    rows = {r["account_id"]: r for r in engine.rows("account", sorted(world.tiers))}
    # NAICS 5112 is Information, SIC 3571 Manufacturing (the shipped mapping).
    assert {rows[f"acct{i:02d}"]["sector"] for i in range(6)} == {"Information"}
    assert {rows[f"acct{i:02d}"]["sector"] for i in range(6, 12)} == {"Manufacturing"}
    assert rows["acct00"]["size_band"] == "200-1000" and rows["acct01"]["size_band"] == "50-200"
    assert rows["acct00"]["revenue_tier"] == "10M-100M"
    # Buying committee: engaged accounts have 4 of the 6 default roles active in 30 days.
    assert rows["acct00"]["roles_engaged"] == 4
    assert rows["acct00"]["committee_coverage"] == pytest.approx(4 / 6)
    assert rows["acct02"]["roles_engaged"] == 0  # its one member was last seen 60 days ago
    assert rows["acct00"]["member_browsers"] == ["Firefox"]


def test_tiering_thresholds_are_configurable(world: World, engine: SegmentEngine) -> None:
    rules = parse_rules({"tiering": {"fit_min_employees": 10, "fit_sectors": ["Information"]}}, "t")
    stricter = SegmentEngine(engine.con, rules, NOW)
    tier_a = stricter.members(_segment({"of": "account", "where": {"property": "tier", "eq": "A"}}))
    # Every engaged account in Information (accounts 0-5) is now fit, whatever its size.
    assert tier_a == ["acct00", "acct01", "acct04", "acct05"]


def test_rfm_groups_and_lifecycle_stages_are_recovered(world: World, engine: SegmentEngine) -> None:
    for group in RFM_GROUPS:
        members = engine.members(_segment({"where": {"property": "rfm_segment", "eq": group}}))
        assert members == sorted(p for p, g in world.rfm.items() if g == group), group
    for stage in ("new", "active", "returning", "dormant", "lapsing"):
        members = engine.members(_segment({"where": {"property": "lifecycle", "eq": stage}}))
        planted = {p for p, s in world.lifecycle.items() if s == stage}
        assert planted <= set(members), stage
        assert not (set(world.lifecycle) - planted) & set(members), stage


def test_account_conditions_for_users_and_user_conditions_for_accounts(
    engine: SegmentEngine,
) -> None:
    users_at_big_accounts = _segment(
        {
            "where": {
                "all": [
                    {"account": {"property": "employees", "gte": 200}},
                    {"performed": "Viewed Pricing", "at_least": 2, "within": "30d"},
                ]
            }
        }
    )
    # Fit accounts 0, 4, 8 are engaged (4 members each, active within 10 days); the other fit
    # accounts' single member was last active 60 days ago.
    assert engine.members(users_at_big_accounts) == sorted(
        f"u:acct{a:02d}-{m}" for a in (0, 4, 8) for m in range(4)
    )
    committee = _segment(
        {
            "of": "account",
            "where": {
                "all": [
                    {"users": {"performed": "*", "within": "7d"}, "at_least": 3},
                    {"users": {"property": "traits.title", "eq": "Director"}},
                ]
            },
        }
    )
    assert engine.members(committee) == ["acct00", "acct01", "acct04", "acct05", "acct08", "acct09"]
    never_bought = _segment({"where": {"performed": "Order Completed", "at_most": 0}})
    assert not set(engine.members(never_bought)) & {
        p for p in engine.base_ids("person") if p.startswith("u:champions")
    }
    salesforce = _segment(
        {"of": "account", "where": {"property": "technologies", "contains": "Salesforce"}}
    )
    assert engine.members(salesforce) == ["acct00", "acct03", "acct06", "acct09"]
    not_german = _segment({"where": {"not": {"property": "country", "in": ["DE"]}}})
    assert not any(m.startswith("u:champions") for m in engine.members(not_german))
    enterprise = _segment(
        {"of": "account", "where": {"property": "traits.plan", "eq": "enterprise"}}
    )
    assert engine.members(enterprise) == [f"acct{i:02d}" for i in range(0, 12, 2)]


def test_cohort_membership_conditions(tmp_path: Path) -> None:
    world = build_world(tmp_path, b2c=False)
    segment = _segment(
        {
            "of": "account",
            "where": {"all": [{"cohort": "expanding"}, {"property": "tier", "eq": "A"}]},
        }
    )
    older = tmp_path / "older.duckdb"  # a catalog published before cohorts existed
    shutil.copy(world.warehouse, older)
    with duckdb.connect(str(older)) as con:
        con.execute("DROP VIEW cohort_membership")
    with (
        duckdb.connect(str(older), read_only=True) as con,
        pytest.raises(SegmentError, match=r"uses cohort 'expanding'.*no cohort_membership view"),
    ):
        SegmentEngine(con, SegmentRules(), NOW).members(segment)
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        assert SegmentEngine(con, SegmentRules(), NOW).members(segment) == []  # none yet
    # What the stream's cohort stage writes, through the lake and the published views.
    changes = [
        {
            "cohort": "expanding",
            "subject_kind": kind,
            "subject_id": subject,
            "change": "enter",
            "at": "2026-03-01T00:00:00.000Z",
            "criterion": "c",
            "event_id": f"e{i}",
        }
        for i, (kind, subject) in enumerate(
            [("account", "acct00"), ("account", "acct03"), ("person", "acct04")]  # wrong kind
        )
    ]
    world.lake.write("cohort_changes", records_to_table(changes, COHORT_CHANGE_SCHEMA))
    publish_catalog(world.warehouse, world.lake)
    con = duckdb.connect(str(world.warehouse), read_only=True)
    try:
        assert SegmentEngine(con, SegmentRules(), NOW).members(segment) == ["acct00"]
    finally:
        con.close()


def test_quality_verdicts_flip(engine: SegmentEngine) -> None:
    champions = _segment({"where": {"property": "rfm_segment", "eq": "champions"}})
    hibernating = parse_segments(
        [{"name": "hibernating", "where": {"property": "rfm_segment", "eq": "hibernating"}}], "t"
    )[0]
    loyal = parse_segments(
        [{"name": "loyal", "where": {"property": "rfm_segment", "in": ["loyal", "at_risk"]}}], "t"
    )[0]
    healthy = check_segments(
        engine, [champions, hibernating, loyal], min_size=20, conversion_event="Order Completed"
    )
    assert [q.verdicts for q in healthy.segments] == [[], [], []]
    assert healthy.segments[0].conversion == 1.0 and healthy.segments[1].conversion == 0.0
    # ...two segments made identical: both are duplicates
    twin = parse_segments(
        [{"name": "twin", "where": {"property": "rfm_segment", "eq": "champions"}}], "t"
    )[0]
    duplicated = check_segments(engine, [champions, twin], min_size=20, conversion_event=None)
    assert duplicated.overlap["s"]["twin"] == 1.0
    assert all(
        any(v.startswith("duplicate: 100%") for v in q.verdicts) for q in duplicated.segments
    )
    # ...a segment made too small
    tiny = parse_segments(
        [{"name": "tiny", "where": {"property": "person_id", "eq": "u:champions-00"}}], "t"
    )[0]
    small = check_segments(engine, [tiny], min_size=20, conversion_event=None)
    assert small.segments[0].verdicts == ["too small: 1 members, below the minimum of 20"]
    # ...two segments that convert alike are not distinct (champions vs new: both bought)
    new = parse_segments([{"name": "new", "where": {"property": "rfm_segment", "eq": "new"}}], "t")[
        0
    ]
    alike = check_segments(
        engine, [champions, new], min_size=20, conversion_event="Order Completed"
    )
    assert alike.segments[0].verdicts == [
        "not distinct from new on Order Completed: 100% [84%-100%] vs 100% [84%-100%]"
    ]
    base = len(engine.base_ids("person"))
    assert alike.coverage["person"] == {
        "uncovered": base - 40,
        "base": base,
        "share": (base - 40) / base,
    }


def test_wilson_and_jaccard() -> None:
    lo, hi = wilson_interval(20, 20)
    assert lo == pytest.approx(0.8389, abs=1e-4) and hi == 1.0
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0


def adjusted_rand_index(truth: list[int], found: list[int]) -> float:
    """ARI (Hubert and Arabie) from the contingency table."""
    pairs = Counter(zip(truth, found, strict=True))
    index = sum(comb(n, 2) for n in pairs.values())
    a = sum(comb(n, 2) for n in Counter(truth).values())
    b = sum(comb(n, 2) for n in Counter(found).values())
    expected = a * b / comb(len(truth), 2)
    return (index - expected) / ((a + b) / 2 - expected)


def test_adjusted_rand_index_itself() -> None:
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0
    assert adjusted_rand_index([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1]) < 0


def test_personas_recover_planted_groups_deterministically(tmp_path: Path) -> None:
    world = build_world(tmp_path, b2b=False, b2c=False, personas=True)
    con = duckdb.connect(str(world.warehouse), read_only=True)
    try:
        engine = SegmentEngine(con, SegmentRules(), NOW)
        result = find_personas(engine, "person", range(2, 6), seed=3)
        again = find_personas(engine, "person", range(2, 6), seed=3)
    finally:
        con.close()
    assert result.to_json() == again.to_json()
    assert result.k == 3 and max(result.silhouettes, key=result.silhouettes.__getitem__) == 3
    found = {m: p.index for p in result.personas for m in p.members}
    people = sorted(world.personas)
    ari = adjusted_rand_index([world.personas[p] for p in people], [found[p] for p in people])
    assert ari >= 0.8
    described = {p.traits[0]["feature"] for p in result.personas} | {
        t["feature"] for p in result.personas for t in p.traits[:2]
    }
    assert {"event:Added to Cart", "event:Read Docs"} & described
    assert sum(len(p.members) for p in result.personas) == 120


def test_the_demo_definitions_segments_all_compute(engine: SegmentEngine) -> None:
    from pipeline.definitions import load_definitions
    from pipeline.demo.site import DEMO_DEFINITIONS

    demo = load_definitions(DEMO_DEFINITIONS)
    assert len(demo.segments) >= 6
    demo_engine = SegmentEngine(engine.con, demo.segment_rules, NOW)
    sizes = {s.name: len(demo_engine.members(s)) for s in demo.segments}
    assert sizes["champions"] == 20 and sizes["tier_a_accounts"] == 3
    assert sizes["at_risk_shoppers"] == 40
