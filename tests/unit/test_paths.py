"""Paths against a brute-force Python reference on generated lakes (duplicated events, ties,
defined events, events without a session), and the real CLI as a subprocess."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.errors import PathsError
from pipeline.warehouse.paths import PathsSpec, run_paths
from tests.unit.funnel_lake import T0, iso
from tests.unit.test_retention import build

NAMES = ["$pageview", "$pageview", "Signed Up", "$click", "Pricing"]


def generate(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for i in range(700):
        person = f"p{rng.randrange(30)}"
        session = rng.choice([f"s{person}-{rng.randrange(3)}"] * 9 + [None])
        ms = rng.randrange(0, 600_000, 1_000)  # a coarse grid: ties broken by event_id
        name = rng.choice(NAMES)
        records.append(
            {
                "event_id": f"e{i}",
                "type": "track",
                "event": name,
                "anonymous_id": person,
                "person_id": person,
                "session_id": session,
                "timestamp": iso(T0 + ms),
                "received_at": iso(T0 + ms + 5),
                "defined_events": ["CTA"] if name == "$click" and i % 2 == 0 else [],
            }
        )
    for record in records[::9]:  # replays: later received, another time
        copy = dict(record)
        ms = int(datetime.fromisoformat(record["timestamp"]).timestamp() * 1000) - T0
        copy["timestamp"] = iso(ms + 7_000)
        copy["received_at"] = iso(ms + 7_100)
        records.append(copy)
    return records


def reference(records: list[dict[str, Any]], spec: PathsSpec) -> tuple[int, list[tuple]]:
    kept: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["event_id"] not in kept or r["received_at"] < kept[r["event_id"]]["received_at"]:
            kept[r["event_id"]] = r
    scopes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in kept.values():
        t = datetime.fromisoformat(r["timestamp"])
        if (spec.since and t < spec.since) or (spec.until and t >= spec.until):
            continue
        scope = r["session_id"] if spec.per == "session" else r["person_id"]
        if scope is not None:
            scopes[scope].append(r)
    counts: Counter[tuple[str, ...]] = Counter()
    people: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for events in scopes.values():
        events.sort(key=lambda r: (r["timestamp"], r["event_id"]))
        for i, r in enumerate(events):
            if r["event"] != spec.event and spec.event not in r["defined_events"]:
                continue
            if spec.direction == "next":
                path = [e["event"] for e in events[i + 1 : i + 1 + spec.steps]]
                end = "(end)"
            else:
                path = [e["event"] for e in events[max(0, i - spec.steps) : i]][::-1]
                end = "(start)"
            if len(path) < spec.steps:
                path.append(end)
            counts[tuple(path)] += 1
            people[tuple(path)].add(r["person_id"])
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: spec.top]
    return sum(counts.values()), [(list(p), c, len(people[p])) for p, c in ranked]


SPECS = [
    PathsSpec("Signed Up"),
    PathsSpec("Signed Up", steps=3, top=15),
    PathsSpec("Signed Up", direction="previous", steps=2, top=8),
    PathsSpec("$pageview", steps=2, per="person", top=20),
    PathsSpec("CTA", direction="previous", steps=1, per="person"),
    PathsSpec(
        "Pricing",
        steps=2,
        since=datetime(2026, 1, 1, 0, 2, tzinfo=UTC),
        until=datetime(2026, 1, 1, 0, 8, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_brute_force(tmp_path: Path, seed: int) -> None:
    records = generate(seed)
    warehouse = build(tmp_path, records)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for spec in SPECS:
            result = run_paths(con, spec)
            total, expected = reference(records, spec)
            assert result.occurrences == total, spec
            assert [(p.path, p.count, p.people) for p in result.paths] == expected, spec
            assert all(p.share == round(p.count / total, 6) for p in result.paths)
            assert len(result.paths) > 1, f"{spec}: the data must give several paths"
    finally:
        con.close()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"event": ""}, "--from needs an event name"),
        ({"event": "A", "direction": "sideways"}, "unknown --direction 'sideways'"),
        ({"event": "A", "steps": "11"}, "--steps must be 1..10, got 11"),
        ({"event": "A", "top": "lots"}, "--top must be a whole number"),
        ({"event": "A", "per": "account"}, "unknown --per 'account'"),
    ],
)
def test_spec_errors_name_the_problem(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(PathsError, match=message):
        PathsSpec.from_mapping(raw)


def test_cli(tmp_path: Path) -> None:
    events = ["$pageview", "Signed Up", "Pricing", "$pageview", "Signed Up", "Pricing"]
    events += ["$pageview", "Signed Up"]
    build(
        tmp_path,
        [
            {
                "event_id": f"e{i}",
                "type": "track",
                "event": name,
                "person_id": "p1",
                "anonymous_id": "p1",
                "session_id": "s1",
                "timestamp": iso(T0 + i * 1000),
                "received_at": iso(T0 + i * 1000),
            }
            for i, name in enumerate(events)
        ],
    )
    run = [sys.executable, "-m", "pipeline", "paths", "--data-dir", str(tmp_path)]
    out = subprocess.run(
        [*run, "--from", "Signed Up", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["occurrences"] == 3
    assert [(p["path"], p["count"], p["share"]) for p in result["paths"]] == [
        (["Pricing"], 2, 0.666667),
        (["(end)"], 1, 0.333333),
    ]
    back = subprocess.run(
        [*run, "--from", "Pricing", "--direction", "previous", "--steps", "2", "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert back.stdout.splitlines() == ["path,count,share,people", "Signed Up > $pageview,2,1.0,1"]
    bad = subprocess.run([*run, "--from", "X", "--steps", "0"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "autocap: error: --steps must be 1..10, got 0"
