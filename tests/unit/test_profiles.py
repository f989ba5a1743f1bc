"""Person profiles: each property kind on its own, then hypothesis properties: folding events
one by one equals a from-scratch computation over the list, and replays change nothing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.definitions import Definitions, load_definitions
from pipeline.errors import ConfigError
from pipeline.profiles import (
    ProfileState,
    country_from_locale,
    fold_profile,
    profile_record,
)
from pipeline.sessions import session_id_for
from pipeline.timeutil import format_ts

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36"
)
DEFINITIONS_YAML = """
events:
  - name: Viewed Pricing
    match: {event: $pageview, url: "*/pricing*"}
properties:
  - name: first_plan
    kind: first
    field: properties.plan
  - name: last_plan
    kind: last
    field: properties.plan
    event: [Upgraded, Signed Up]
  - name: pricing_views
    kind: count
    event: Viewed Pricing
  - name: upgrades_7d
    kind: count
    event: Upgraded
    window: 7d
  - name: revenue_30d
    kind: sum
    event: Upgraded
    field: properties.amount
    window: 30d
  - name: lead_score
    kind: score
    half_life: 7d
    weights: {Viewed Pricing: 5, Signed Up: 20}
  - name: tier
    kind: case
    cases:
      - when: {lead_score: {gte: 20}, last_plan: {eq: pro}}
        then: hot
      - when: {country: {in: [US, CA]}}
        then: north_america
    else: cold
"""


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> Definitions:
    path = tmp_path_factory.mktemp("defs") / "definitions.yaml"
    path.write_text(DEFINITIONS_YAML)
    return load_definitions(path)


def event(n: int, minutes: float = 0, **fields: Any) -> dict[str, Any]:
    """An enriched record of person u:1 at T0 + minutes."""
    base: dict[str, Any] = {
        "event_id": f"e{n}",
        "type": "track",
        "event": "$pageview",
        "person_id": "u:1",
        "anonymous_id": "dev-1",
        "timestamp": format_ts(T0 + timedelta(minutes=minutes)),
        "context": {},
        "properties": {},
        "defined_events": [],
    }
    return base | fields


def fold_all(events: list[dict[str, Any]], definitions: Definitions) -> ProfileState:
    state = None
    for e in events:
        state, _ = fold_profile(state, e, definitions)
    assert state is not None
    return state


def test_set_set_once_and_unset_follow_posthog(definitions: Definitions) -> None:
    state = fold_all(
        [
            event(1, type="identify", traits={"email": "ann@acme.io", "plan": "free"}),
            event(2, properties={"$set_once": {"plan": "pro", "source": "ad"}}),
            event(3, properties={"$set": {"plan": "pro"}, "$unset": ["email"]}),
            event(4, properties={"$set_once": {"source": "seo"}}),
        ],
        definitions,
    )
    assert state.traits == {"plan": "pro", "source": "ad"}


def test_built_ins_from_context(definitions: Definitions) -> None:
    first = event(
        1,
        5,
        session_id=session_id_for("dev-1", "e1"),
        context={
            "page": {"url": "https://x.io/", "referrer": "https://news.ycombinator.com/"},
            "campaign": {"source": "hn"},
            "userAgent": CHROME_MAC,
            "locale": "en-US",
        },
    )
    later = event(2, 30, session_id=session_id_for("dev-1", "e1"), context={"page": {"url": "u2"}})
    earlier_no_referrer = event(3, 1, session_id=session_id_for("dev-1", "e3"))
    record = profile_record(fold_all([first, later, earlier_no_referrer], definitions), definitions)
    assert record["first_seen"] == format_ts(T0 + timedelta(minutes=1))
    assert record["last_seen"] == format_ts(T0 + timedelta(minutes=30))
    assert record["event_count"] == 3
    assert record["session_count"] == 2  # e1 and e3 opened sessions, e2 did not
    # The earliest event had no referrer: the person came direct.
    assert (record["initial_referrer"], record["initial_utm_source"]) == (None, None)
    assert record["last_url"] == "u2"
    assert (record["browser"], record["os"], record["country"]) == ("Chrome", "Mac OS X", "US")


@pytest.mark.parametrize(
    ("locale", "country"),
    [("en-US", "US"), ("pt_BR", "BR"), ("de", None), ("zh-Hant-TW", "TW"), (None, None)],
)
def test_country_from_locale(locale: str | None, country: str | None) -> None:
    assert country_from_locale(locale) == country


def test_email_kind_business_or_consumer(definitions: Definitions) -> None:
    def kind(email: str) -> Any:
        state = fold_all([event(1, type="identify", traits={"email": email})], definitions)
        return profile_record(state, definitions)["email_kind"]

    assert kind("ann@Gmail.com") == "consumer"
    assert kind("bob@mail.yahoo.co.uk") == "consumer"
    assert kind("cat@acme.io") == "business"
    assert kind("not an address") is None


def test_custom_kinds(definitions: Definitions) -> None:
    pricing = {"event": "$pageview", "defined_events": ["Viewed Pricing"]}
    state = fold_all(
        [
            event(1, 0, properties={"plan": "free"}),
            event(2, 60, **pricing),
            event(3, 60 * 24, event="Signed Up", properties={"plan": "trial"}),
            event(4, 60 * 24 * 2, event="Upgraded", properties={"plan": "pro", "amount": 30}),
            event(5, 60 * 24 * 10, event="Upgraded", properties={"plan": "pro", "amount": 12.5}),
        ],
        definitions,
    )
    values = profile_record(state, definitions)["properties"]
    assert values["first_plan"] == "free"
    assert values["last_plan"] == "pro"
    assert values["pricing_views"] == 1
    assert values["upgrades_7d"] == 1  # the day-2 upgrade is 8 days before the last event
    assert values["revenue_30d"] == 42.5
    # 5 points 10 days minus an hour ago, 20 points 9 days ago; half-life 7 days.
    expected = 5 * 0.5 ** ((10 * 24 - 1) / (7 * 24)) + 20 * 0.5 ** (9 / 7)
    assert values["lead_score"] == pytest.approx(expected, abs=1e-5)
    assert values["tier"] == "cold"  # score below 20
    hot = fold_all([event(1, event="Signed Up", properties={"plan": "pro"})], definitions)
    assert profile_record(hot, definitions)["properties"]["tier"] == "hot"


def test_a_replayed_event_changes_nothing(definitions: Definitions) -> None:
    state = fold_all([event(1), event(2, 5, event="Signed Up")], definitions)
    again, changed = fold_profile(state, event(1), definitions)
    assert not changed
    assert again == state


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("properties: {a: 1}", "`properties` must be a list"),
        ("properties: [{name: x, kind: avg}]", "'x': `kind` must be one of"),
        ("properties: [{name: x, kind: first}]", "'x': kind first needs a `field`"),
        ("properties: [{name: x, kind: count, window: soon}]", "'x': bad window 'soon'"),
        ("properties: [{name: x, kind: count, field: a}]", "'x': unknown key 'field'"),
        ("properties: [{name: x, kind: score, half_life: 1d}]", "'x': kind score needs `weights"),
        ("properties: [{name: Bad-Name, kind: count}]", "'Bad-Name': a property name"),
        (
            "properties: [{name: x, kind: count}, {name: x, kind: count}]",
            "property 'x' is defined twice",
        ),
        (
            "properties: [{name: t, kind: case, cases: [{when: {s: {approx: 1}}, then: a}]}]",
            "'t': unknown operator 'approx'",
        ),
        (
            "properties: [{name: t, kind: case, cases: [{when: {s: {gt: 1}}, then: a}]},"
            " {name: s, kind: count}]",
            "'t': `s` is declared below this case",
        ),
    ],
)
def test_bad_properties_name_the_entry(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "definitions.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=r"definitions\.yaml") as raised:
        load_definitions(path)
    assert message in str(raised.value)


# --- from scratch: an independent, naive computation over the whole list -----------------


def from_scratch(events: list[dict[str, Any]]) -> dict[str, Any]:
    times = {e["event_id"]: e["timestamp"] for e in events}
    unique = list({e["event_id"]: e for e in events}.values())
    order = sorted(unique, key=lambda e: (e["timestamp"], e["event_id"]))
    last_seen = max(times.values())
    last = datetime.fromisoformat(last_seen)
    traits: dict[str, Any] = {}
    for e in unique:  # arrival order
        props = e["properties"]
        traits.update(props.get("$set") or {})
        for k, v in (props.get("$set_once") or {}).items():
            traits.setdefault(k, v)
        for k in props.get("$unset") or []:
            traits.pop(k, None)
    plans = [e for e in order if e["properties"].get("plan") is not None]
    upgrades = [e for e in order if e["event"] == "Upgraded"]
    recent = [e for e in upgrades if datetime.fromisoformat(e["timestamp"]) >= last - timedelta(7)]
    score = sum(
        {"Signed Up": 20}.get(e["event"], 0)
        * 0.5 ** ((last - datetime.fromisoformat(e["timestamp"])) / timedelta(days=7))
        for e in unique
    )
    return {
        "event_count": len(unique),
        "first_seen": order[0]["timestamp"],
        "last_seen": last_seen,
        "initial_referrer": order[0]["context"].get("page", {}).get("referrer"),
        "traits": traits,
        "first_plan": plans[0]["properties"]["plan"] if plans else None,
        "upgrades_7d": len(recent),
        "lead_score": score,
    }


def observe(state: ProfileState, definitions: Definitions) -> dict[str, Any]:
    record = profile_record(state, definitions)
    return {
        **{k: record[k] for k in ("event_count", "first_seen", "last_seen", "initial_referrer")},
        "traits": record["traits"],
        **{k: record["properties"][k] for k in ("first_plan", "upgrades_7d", "lead_score")},
    }


@st.composite
def event_logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 25))
    log = []
    for i in range(n):
        props: dict[str, Any] = {}
        if draw(st.booleans()):
            props["plan"] = draw(st.sampled_from(["free", "pro"]))
        for op in ("$set", "$set_once"):
            if draw(st.integers(0, 3)) == 0:
                props[op] = {draw(st.sampled_from("abc")): draw(st.integers(0, 3))}
        if draw(st.integers(0, 5)) == 0:
            props["$unset"] = [draw(st.sampled_from("abc"))]
        referrer = draw(st.sampled_from([None, "https://a.example/", "https://b.example/"]))
        minutes = draw(st.integers(0, 60 * 24 * 20))  # out of order and ties on purpose
        log.append(
            event(
                i,
                minutes - minutes % 720,
                event=draw(st.sampled_from(["$pageview", "Signed Up", "Upgraded"])),
                properties=props,
                context={"page": {"referrer": referrer}} if referrer else {},
            )
        )
    return log


@settings(max_examples=150, deadline=None)
@given(log=event_logs(), data=st.data())
def test_fold_equals_from_scratch_and_replays_change_nothing(
    definitions: Definitions, log: list[dict[str, Any]], data: st.DataObject
) -> None:
    state = fold_all(log, definitions)
    got, want = observe(state, definitions), from_scratch(log)
    assert math.isclose(got.pop("lead_score"), want.pop("lead_score"), abs_tol=1e-5)
    assert got == want
    # A crash replays some prefix of the log: nothing may move, not even a counter.
    cut = data.draw(st.integers(0, len(log)))
    replayed = state
    for e in log[:cut]:
        replayed, changed = fold_profile(replayed, e, definitions)
        assert not changed
    assert replayed == state
    # The table's JSON round trip (Faust changelog) keeps the fold going identically.
    assert ProfileState.from_json(state.to_json()) == state
