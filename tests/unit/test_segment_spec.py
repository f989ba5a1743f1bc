"""Segment definitions: validation names the segment and key; compiled SQL carries no
analyst text (values are bound); rules parse with their defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.definitions import load_definitions
from pipeline.errors import ConfigError
from pipeline.segments.compile import compile_segment
from pipeline.segments.rules import SegmentRules, band_labels, parse_rules
from pipeline.segments.spec import (
    AccountWhere,
    AllOf,
    Not,
    Performed,
    PropertyTest,
    UsersWhere,
    cohorts_used,
    parse_segments,
)

NOW = datetime(2026, 3, 10, tzinfo=UTC)


def test_nested_conditions_parse_into_their_types() -> None:
    (people, accounts) = parse_segments(
        [
            {
                "name": "big_evaluators",
                "where": {
                    "all": [
                        {"account": {"property": "employees", "gte": 1000}},
                        {"performed": "Viewed Pricing", "at_least": 2, "within": "30d"},
                        {"not": {"property": "traits.plan", "eq": "pro"}},
                        {"any": [{"cohort": "power"}, {"property": "country", "in": ["DE"]}]},
                    ]
                },
            },
            {
                "name": "committee",
                "of": "account",
                "where": {"users": {"performed": "*", "within": "7d"}, "at_least": 3},
            },
        ],
        "defs.yaml",
    )
    assert isinstance(people.where, AllOf)
    account, performed, negated, _ = people.where.parts
    assert account == AccountWhere(PropertyTest("employees", "gte", 1000))
    assert performed == Performed("Viewed Pricing", 2, None, timedelta(days=30))
    assert negated == Not(PropertyTest("traits.plan", "eq", "pro"))
    assert cohorts_used(people.where) == ["power"]
    assert accounts.where == UsersWhere(Performed(None, 1, None, timedelta(days=7)), 3)
    assert accounts.table == "segment_committee"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "Bad Name", "where": {"cohort": "x"}}, "'Bad Name': a segment name"),
        ({"name": "history", "where": {"cohort": "x"}}, "`history` is taken"),
        ({"name": "s", "of": "team", "where": {"cohort": "x"}}, "'s': `of` must be person"),
        ({"name": "s"}, "'s': needs a `where`"),
        ({"name": "s", "where": {"property": "shoe_size", "eq": 1}}, "unknown person property"),
        ({"name": "s", "where": {"property": "country", "like": "D%"}}, "exactly one operator"),
        ({"name": "s", "where": {"property": "country", "in": "DE"}}, "`in` needs a non-empty"),
        ({"name": "s", "where": {"property": "elements.x", "eq": 1}}, "paths go into traits"),
        ({"name": "s", "where": {"performed": "X", "within": "soon"}}, "'s'"),
        ({"name": "s", "where": {"performed": "X", "at_least": 3, "at_most": 1}}, "below"),
        ({"name": "s", "where": {"users": {"cohort": "x"}}}, "for segments of accounts"),
        (
            {"name": "s", "of": "account", "where": {"account": {"cohort": "x"}}},
            "for segments of people",
        ),
        ({"name": "s", "where": {"all": []}}, "`all` needs a non-empty list"),
        ({"name": "s", "where": {"wat": 1}}, "unknown condition keys ['wat']"),
    ],
)
def test_bad_segments_name_the_segment_and_key(item: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"defs\.yaml: segment") as caught:
        parse_segments([item], "defs.yaml")
    assert message in str(caught.value)


def test_a_segment_defined_twice_is_refused() -> None:
    item = {"name": "s", "where": {"cohort": "x"}}
    with pytest.raises(ConfigError, match="segment 's' is defined twice"):
        parse_segments([item, item], "defs.yaml")


def test_values_are_bound_never_part_of_the_sql() -> None:
    hostile = "x'); DROP TABLE events; --"
    (segment,) = parse_segments(
        [
            {
                "name": "s",
                "where": {
                    "any": [
                        {"property": "traits.plan", "eq": hostile},
                        {"performed": hostile, "within": "1d"},
                        {"cohort": hostile},
                        {"account": {"property": "traits.tier", "in": [hostile]}},
                    ]
                },
            }
        ],
        "d",
    )
    query = compile_segment(segment, NOW)
    assert hostile not in query.sql and "DROP" not in query.sql
    # eq, cohort, and performed twice (raw events and defined events)
    assert sum(1 for v in query.params.values() if v == hostile) == 5
    assert [hostile] in query.params.values()


def test_rules_defaults_overrides_and_errors(tmp_path: Path) -> None:
    assert parse_rules(None, "d") == SegmentRules()
    rules = parse_rules(
        {
            "tiering": {"fit_min_employees": 1000, "fit_sectors": ["Finance"]},
            "rfm": {"event": "Bought", "amount": "properties.total", "window": "90d"},
            "lifecycle": {"new": "7d"},
        },
        "d",
    )
    assert rules.fit_min_employees == 1000 and rules.fit_sectors == ("Finance",)
    assert rules.rfm_amount == ("properties", "total") and rules.rfm_window == timedelta(90)
    assert rules.lifecycle_new == timedelta(7) and rules.lifecycle_dormant == timedelta(30)
    for bad, message in [
        ({"tiering": {"fit_min": 1}}, "segment_rules.tiering: unknown key 'fit_min'"),
        ({"scoring": {}}, "segment_rules.scoring: unknown section"),
        ({"firmographics": {"employee_bands": [50, 10]}}, "increasing list"),
        ({"rfm": {"amount": "revenue"}}, "properties.<field>"),
        ({"lifecycle": {"active": "60d"}}, "`active` must not exceed `dormant`"),
    ]:
        with pytest.raises(ConfigError, match="d: segment_rules") as caught:
            parse_rules(bad, "d")
        assert message in str(caught.value)
    assert band_labels((10, 50)) == ["<10", "10-50", "50+"]
    assert band_labels((1e6, 1e7)) == ["<1M", "1M-10M", "10M+"]
    defs = tmp_path / "definitions.yaml"
    defs.write_text("segments:\n  - {name: de, where: {property: country, eq: DE}}\n")
    loaded = load_definitions(defs)
    assert [s.name for s in loaded.segments] == ["de"]
    assert loaded.segment_rules == SegmentRules()


def test_the_documented_segment_examples_parse(tmp_path: Path) -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    blocks = []
    for doc in ("docs/definitions.md", "docs/analyst-guide.md"):
        text = (root / doc).read_text()
        blocks += [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "segment" in b]
    assert len(blocks) >= 4
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.yaml"
        path.write_text(block)
        load_definitions(path)  # raises ConfigError, naming what is wrong, if a doc drifts
