"""Retention against a brute-force Python reference on generated lakes (with duplicated
events and defined events), and the real CLI as a subprocess."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.errors import RetentionError
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.retention import RetentionSpec, run_retention
from pipeline.warehouse.schema import records_to_table
from tests.unit.funnel_lake import T0, iso

DAY = 86_400_000


def generate(seed: int) -> list[dict[str, Any]]:
    """Events over 40 days (T0 is a Thursday); every 7th event is replayed later with
    another received_at and time (and, for "x", other defined events), so `events` must
    keep the earliest-received copy."""
    rng = random.Random(seed)
    records = []
    for i in range(900):
        person = f"p{rng.randrange(80)}"
        ms = rng.randrange(0, 40 * DAY, 3_600_000) + rng.randrange(3_600_000)
        name = rng.choice(["Signed Up", "Used App", "Used App", "x"])
        records.append(
            {
                "event_id": f"e{i}",
                "type": "track",
                "event": name,
                "anonymous_id": person,
                "person_id": person,
                "timestamp": iso(T0 + ms),
                "received_at": iso(T0 + ms + 10),
                # Every "x" with an even id is also a "Used App" by definition.
                "defined_events": ["Used App"] if name == "x" and i % 2 == 0 else [],
            }
        )
    for record in records[::7]:
        copy = dict(record)
        shift = rng.choice([1, 3]) * DAY
        base = datetime.fromisoformat(record["timestamp"])
        copy["timestamp"] = iso(int(base.timestamp() * 1000) - T0 + shift)
        copy["received_at"] = iso(int(base.timestamp() * 1000) - T0 + shift + 50)
        if record["event"] == "x":  # replayed under other definitions: the first copy wins
            copy["defined_events"] = [] if record["defined_events"] else ["Used App"]
        records.append(copy)
    return records


def build(root: Path, records: list[dict[str, Any]]) -> Path:
    lake = Lake(root / "lake")
    warehouse = root / "warehouse.duckdb"
    publish_catalog(warehouse, lake)
    half = len(records) // 2
    lake.write("events", records_to_table(records[:half]))
    lake.write("events", records_to_table(records[half:]))
    return publish_catalog(warehouse, lake)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def reference(records: list[dict[str, Any]], spec: RetentionSpec, as_of: datetime) -> dict:
    """Dedup by event_id (earliest received), then count per cohort by brute force."""
    kept: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["event_id"] not in kept or r["received_at"] < kept[r["event_id"]]["received_at"]:
            kept[r["event_id"]] = r

    def does(r: dict[str, Any], name: str) -> bool:
        return r["event"] == name or name in r["defined_events"]

    def period(ms: int) -> int:
        day = ms // DAY
        return (day + 3) // 7 if spec.period == "week" else day

    def start_ms(p: int) -> int:
        return (p * 7 - 3 if spec.period == "week" else p) * DAY

    since = spec.since and int(spec.since.timestamp() * 1000)
    until = spec.until and int(spec.until.timestamp() * 1000)
    firsts: dict[str, int] = {}
    for r in kept.values():
        if does(r, spec.start_event):
            ms = _ms(r["timestamp"])
            firsts[r["person_id"]] = min(ms, firsts.get(r["person_id"], ms))
    firsts = {
        p: ms
        for p, ms in firsts.items()
        if (since is None or ms >= since) and (until is None or ms < until)
    }
    n = spec.periods + 1
    table: dict[int, list[int]] = {}
    sizes: dict[int, int] = {}
    for person, first in firsts.items():
        cohort = period(first)
        sizes[cohort] = sizes.get(cohort, 0) + 1
        ks = {
            period(_ms(r["timestamp"])) - cohort
            for r in kept.values()
            if r["person_id"] == person
            and does(r, spec.return_event)
            and _ms(r["timestamp"]) >= first
            and (until is None or _ms(r["timestamp"]) < until)
        }
        row = table.setdefault(cohort, [0] * n)
        for k in range(n):
            if (k in ks) if not spec.unbounded else any(j >= k for j in ks):
                row[k] += 1
    as_of_ms = int(as_of.timestamp() * 1000)
    out = {}
    for cohort in sorted(sizes):
        label = datetime.fromtimestamp(start_ms(cohort) / 1000, UTC).date().isoformat()
        out[label] = (
            sizes[cohort],
            [c if start_ms(cohort + k) < as_of_ms else None for k, c in enumerate(table[cohort])],
        )
    return out


NOW = datetime(2026, 2, 3, 12, tzinfo=UTC)  # cohorts near the end have periods not begun


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_brute_force(tmp_path: Path, seed: int) -> None:
    records = generate(seed)
    warehouse = build(tmp_path, records)
    specs = [
        RetentionSpec("Signed Up", "Used App", "day", 7),
        RetentionSpec("Signed Up", "Used App", "day", 7, unbounded=True),
        RetentionSpec("Signed Up", "Used App", "week", 4),
        RetentionSpec("Signed Up", "Used App", "week", 3, unbounded=True),
        RetentionSpec("Used App", "Used App", "day", 5),
        RetentionSpec(
            "Signed Up",
            "Used App",
            "day",
            10,
            since=datetime(2026, 1, 5, tzinfo=UTC),
            until=datetime(2026, 1, 25, 6, tzinfo=UTC),
        ),
    ]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for spec in specs:
            result = run_retention(con, spec, now=NOW)
            ours = {row.cohort: (row.people, row.retained) for row in result.cohorts}
            expected = reference(records, spec, result.as_of)
            assert ours == expected, spec
            retained = [c for _, row in ours.values() for c in row[1:] if c]
            assert retained, f"{spec}: the data must exercise returns after period 0"
            assert any(None in row for _, row in ours.values()), "periods not begun exist"
            # The overall row adds the cohorts whose period k has begun.
            for k in range(spec.periods + 1):
                counts = [row[k] for _, row in ours.values() if row[k] is not None]
                assert result.overall.retained[k] == (sum(counts) if counts else None)
    finally:
        con.close()


def test_same_event_period_zero_is_everyone(tmp_path: Path) -> None:
    warehouse = build(tmp_path, generate(3))
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        result = run_retention(con, RetentionSpec("Used App", "Used App", "week", 2), now=NOW)
    finally:
        con.close()
    assert result.cohorts
    assert all(row.retained[0] == row.people for row in result.cohorts)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"start_event": "", "return_event": "B"}, "--start-event needs an event name"),
        ({"start_event": "A", "return_event": "B", "period": "month"}, "unknown --period"),
        ({"start_event": "A", "return_event": "B", "periods": "0"}, "--periods must be 1..366"),
        ({"start_event": "A", "return_event": "B", "periods": "x"}, "whole number"),
        ({"start_event": "A", "return_event": "B", "since": "soon"}, "bad --since 'soon'"),
    ],
)
def test_spec_errors_name_the_problem(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(RetentionError, match=message):
        RetentionSpec.from_mapping(raw)


def test_cli(tmp_path: Path) -> None:
    day = timedelta(days=1)
    records = [
        # a: signs up on day 0, uses the app on days 1 and 3; b: day 0, uses it on day 2.
        ("a", "Signed Up", 0),
        ("a", "Used App", 1),
        ("a", "Used App", 3),
        ("b", "Signed Up", 0),
        ("b", "Used App", 2),
        ("c", "Signed Up", 1),
    ]
    build(
        tmp_path,
        [
            {
                "event_id": f"e{i}",
                "type": "track",
                "event": name,
                "person_id": person,
                "anonymous_id": person,
                "timestamp": iso(T0 + int(d * day.total_seconds() * 1000) + 3_600_000),
                "received_at": iso(T0 + int(d * day.total_seconds() * 1000) + 3_600_000),
            }
            for i, (person, name, d) in enumerate(records)
        ],
    )
    run = [sys.executable, "-m", "pipeline", "retention", "--data-dir", str(tmp_path)]
    args = ["--start-event", "Signed Up", "--return-event", "Used App", "--periods", "3"]
    until = ["--until", "2026-01-04T12:00:00Z"]
    out = subprocess.run(
        run + args + until + ["--format", "json"], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    cohorts = {c["cohort"]: c for c in result["cohorts"]}
    assert cohorts["2026-01-01"]["retained"] == [0, 1, 1, 1]
    assert cohorts["2026-01-01"]["rates"] == [0.0, 0.5, 0.5, 0.5]
    assert cohorts["2026-01-02"]["retained"] == [0, 0, 0, None]  # day 3 not begun
    unbounded = subprocess.run(
        run + args + until + ["--unbounded", "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = list(csv.DictReader(io.StringIO(unbounded.stdout)))
    first = [r["retained"] for r in rows if r["cohort"] == "2026-01-01"]
    assert first == ["2", "2", "2", "1"]  # a returned on day 3, b on day 2
    bad = subprocess.run(run + args + ["--period", "hour"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "autocap: error: unknown --period 'hour': use day or week"
