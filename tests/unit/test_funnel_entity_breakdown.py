"""Funnel breakdowns by a person's or an account's property (``person.country``,
``person.traits.plan``, ``account.industry``): one current value per entity, from the
``persons`` / ``accounts`` views, through identity merges, with or without the events index."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import FunnelError
from pipeline.sqlfiles import load_sql
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.event_index import index_events
from pipeline.warehouse.funnel_spec import ACCOUNT_COLUMNS, PERSON_COLUMNS, FunnelSpec
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import (
    ACCOUNT_SCHEMA,
    IDENTITY_SCHEMA,
    PROFILE_SCHEMA,
    records_to_table,
)
from tests.unit.funnel_lake import T0, build_lake, funnel_json, iso

# Everyone does A; p0, p2 and p4 then B. p5 became p4 (an identify): p4's A and B and
# p5's A are one person. p0 and p1 work at acme, p2 at globex; p3 has no profile.
EVENTS = [
    ("p0", "A", 0),
    ("p0", "B", 1000),
    ("p1", "A", 0),
    ("p2", "A", 0),
    ("p2", "B", 1000),
    ("p3", "A", 0),
    ("p4", "A", 0),
    ("p4", "B", 1000),
    ("p5", "A", 500),
]
ACCOUNT_OF = {"p0": "acme", "p1": "acme", "p2": "globex"}
PROFILES: list[dict[str, Any]] = [
    {"person_id": "p0", "country": "DE", "traits": {"plan": "pro"}},
    {"person_id": "p1", "country": "FR"},
    {"person_id": "p2", "country": "DE"},
    {"person_id": "p4", "country": "FR", "traits": {"plan": "free"}},
    # Merged into p4 and seen earlier: p4's own (latest) values win.
    {"person_id": "p5", "country": "US", "traits": {"plan": "trial"}},
]


def _world(root: Path, indexed: bool) -> Path:
    extra = {
        f"e{i}": {"account_id": ACCOUNT_OF[person]}
        for i, (person, _, _) in enumerate(EVENTS)
        if person in ACCOUNT_OF
    }
    build_lake(root, EVENTS, **extra)
    lake = Lake(root / "lake")
    for i, profile in enumerate(PROFILES):
        seen = iso(T0 + (0 if profile["person_id"] == "p5" else 1000 + i))
        profile |= {"version": 1, "first_seen": seen, "last_seen": seen}
    lake.write("profiles", records_to_table(PROFILES, PROFILE_SCHEMA))
    accounts = [
        {"account_id": "acme", "version": 1, "industry": "software", "employees": 250},
        {"account_id": "globex", "version": 1, "industry": "retail", "traits": {"tier": "A"}},
    ]
    lake.write("accounts", records_to_table(accounts, ACCOUNT_SCHEMA))
    link = {
        "kind": "link",
        "from_person": "p5",
        "to_person": "p4",
        "event_id": "link0",
        "timestamp": iso(T0),
        "received_at": iso(T0),
    }
    lake.write("identities", records_to_table([link], IDENTITY_SCHEMA))
    if indexed:
        index_events(lake)
    return publish_catalog(root / "warehouse.duckdb", lake)


def _groups(warehouse: Path, spec: dict[str, Any]) -> dict[str | None, list[int]]:
    result = funnel_json(warehouse, {"steps": "A,B", "window": "1d", **spec})
    groups = {g["value"]: [s["count"] for s in g["steps"]] for g in result["breakdown"]}
    # The groups split the overall funnel: every entity counts under exactly one value.
    totals = [sum(counts[k] for counts in groups.values()) for k in range(2)]
    assert totals == [s["count"] for s in result["steps"]]
    return groups


@pytest.mark.parametrize("indexed", [False, True])
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"breakdown": "person.country"}, {"DE": [2, 2], "FR": [2, 1], "(none)": [1, 0]}),
        (
            {"breakdown": "person.traits.plan"},
            {"pro": [1, 1], "free": [1, 1], "(none)": [3, 1]},
        ),
        (
            {"breakdown": "account.industry"},
            {"software": [2, 1], "retail": [1, 1], "(none)": [2, 1]},
        ),
        ({"breakdown": "account.traits.tier"}, {"A": [1, 1], "(none)": [4, 2]}),
        ({"breakdown": "account.employees"}, {"250": [2, 1], "(none)": [3, 2]}),
        # Per account: acme reached B through p0; people without an account drop out.
        (
            {"breakdown": "account.industry", "by": "account"},
            {"software": [1, 1], "retail": [1, 1]},
        ),
    ],
)
def test_breakdown_by_entity_property(
    tmp_path: Path, indexed: bool, spec: dict[str, Any], expected: dict[str, list[int]]
) -> None:
    assert _groups(_world(tmp_path, indexed), spec) == expected


def test_a_person_property_cannot_split_accounts() -> None:
    with pytest.raises(FunnelError, match="--by account counts accounts"):
        FunnelSpec.from_mapping(
            {"steps": "A,B", "window": "1d", "by": "account", "breakdown": "person.country"}
        )


@pytest.mark.parametrize(
    "breakdown", ["person.bogus", "person", "account.traits", "account.properties.x", "person.os.x"]
)
def test_unknown_entity_properties_are_named(breakdown: str) -> None:
    with pytest.raises(FunnelError, match=f"unknown property '{breakdown}'.*person.COLUMN"):
        FunnelSpec.from_mapping({"steps": "A,B", "window": "1d", "breakdown": breakdown})


def test_every_allowed_column_is_read_by_the_sql() -> None:
    # The SQL names each column in a CASE (identifiers are never spliced in): a column the
    # spec allows but the SQL forgets would silently break down into "(none)".
    sql = load_sql("funnel/entity_values")
    for column in (*PERSON_COLUMNS, *ACCOUNT_COLUMNS):
        assert re.search(rf"WHEN '{column}' THEN {column}\b", sql), column
