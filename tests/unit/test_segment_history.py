"""The materializer keeps segment tables and daily snapshots on a real lake; the CLI
answers as-of questions, diffs, previews and exports from them (k-anonymity honoured),
and its JSON output parses."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.definitions import load_definitions
from pipeline.segments.history import members_on
from pipeline.warehouse.catalog import CatalogPublisher, published_lake
from pipeline.warehouse.materialize import Materializer
from tests.segments_world import NOW, World, build_world

DEFINITIONS = """
segments:
  - name: recent_buyers
    description: bought in the last two days
    where: {performed: Order Completed, within: 2d}
  - name: champions
    where: {property: rfm_segment, eq: champions}
  - name: in_a_cohort        # nobody in the cohort yet: an empty table
    where: {cohort: power_users}
cohorts:
  - name: power_users
    where: {performed: {event: Order Completed, at_least: 3, within: 30d}}
segment_rules:
  quality: {conversion_event: Order Completed}
"""

DAY1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("history")
    world = build_world(root, b2b=False)
    (root / "definitions.yaml").write_text(DEFINITIONS)
    now = [DAY1 - timedelta(hours=2)]
    materializer = Materializer(
        world.lake,
        published_lake(world.lake),
        CatalogPublisher(world.warehouse, world.lake, 0.0),
        world.warehouse,
        lambda: load_definitions(root / "definitions.yaml"),
        grace_s=0.0,
        clock=lambda: now[0],
    )
    for moment in (DAY1 - timedelta(hours=2), DAY1, NOW):  # two runs on day 1, one on day 2
        now[0] = moment
        report = materializer.run_once()
    assert set(report.segments) == {"recent_buyers", "champions", "in_a_cohort"}
    return world


def _bought(world: World, start: datetime, end: datetime) -> list[str]:
    return sorted(
        {
            e["person_id"]
            for e in world.events
            if e["event"] == "Order Completed"
            and start <= datetime.fromisoformat(e["timestamp"]) <= end
        }
    )


def _cli(capsys: pytest.CaptureFixture[str], world: World, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--data-dir", str(world.root)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOCAP_DEFINITIONS_PATH", str(world.root / "definitions.yaml"))


def test_segment_history_answers_as_of_questions(world: World) -> None:
    day1 = _bought(world, DAY1 - timedelta(days=2), DAY1)
    day2 = _bought(world, NOW - timedelta(days=2), NOW)
    assert day1 and day2 and day1 != day2  # the planted data moves between the two days
    con = duckdb.connect(str(world.warehouse), read_only=True)
    try:
        # "Who was in recent_buyers on 5 March?" -> the latest snapshot on or before: 1 March.
        snapshot, members = members_on(con, "recent_buyers", date(2026, 3, 5))
        assert snapshot == date(2026, 3, 1) and members == day1
        assert members_on(con, "recent_buyers", date(2026, 3, 10)) == (date(2026, 3, 10), day2)
        # Two runs on 1 March left one snapshot (the later replaced the earlier).
        rows = con.execute(
            "SELECT snapshot_date, count(*) FROM segment_history WHERE segment = 'recent_buyers'"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert rows == [(date(2026, 3, 1), len(day1)), (date(2026, 3, 10), len(day2))]
        current = con.execute("SELECT subject_id FROM segment_recent_buyers ORDER BY 1").fetchall()
        assert [r[0] for r in current] == day2
        listed = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        tables = {r[0] for r in listed}
        assert {"segment_in_a_cohort", "segment_champions"} <= tables
    finally:
        con.close()


def test_diff_preview_list_and_show_in_json(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    day1 = set(_bought(world, DAY1 - timedelta(days=2), DAY1))
    day2 = set(_bought(world, NOW - timedelta(days=2), NOW))
    code, out, _ = _cli(
        capsys, world, "segment", "diff", "recent_buyers", "--from", "2026-03-02", "--to",
        "2026-03-11", "--format", "json",
    )  # fmt: skip
    diff = orjson.loads(out)
    assert code == 0 and (diff["from"], diff["to"]) == ("2026-03-01", "2026-03-10")
    assert diff["entered"] == sorted(day2 - day1) and diff["left"] == sorted(day1 - day2)

    code, out, _ = _cli(capsys, world, "segment", "list", "--format", "json")
    listed = {row["segment"]: row["materialized_size"] for row in orjson.loads(out)}
    assert listed == {"recent_buyers": len(day2), "champions": 20, "in_a_cohort": 0}

    changed = tmp_path / "changed.yaml"
    changed.write_text(DEFINITIONS.replace("within: 2d", "within: 4d"))
    code, out, _ = _cli(
        capsys, world, "segment", "preview", "recent_buyers", "--definitions", str(changed),
        "--as-of", NOW.isoformat(), "--format", "json",
    )  # fmt: skip
    preview = orjson.loads(out)
    day2_wider = set(_bought(world, NOW - timedelta(days=4), NOW))
    assert preview["entering"] == sorted(day2_wider - day2) and preview["entering"]
    assert preview["leaving"] == [] and preview["staying"] == len(day2)

    code, out, _ = _cli(
        capsys,
        world,
        "segment",
        "show",
        "champions",
        "--as-of",
        NOW.isoformat(),
        "--format",
        "json",
    )
    shown = orjson.loads(out)
    assert shown["size"] == 20 and shown["share"] == pytest.approx(20 / shown["base"])
    assert shown["distributions"]["rfm_segment"] == [
        {"value": "champions", "members": 20, "share": 1.0}
    ]
    assert [t["date"] for t in shown["trend"]] == ["2026-03-01", "2026-03-10"]
    code, out, _ = _cli(capsys, world, "segment", "show", "champions", "--format", "csv")
    assert out.splitlines()[0] == "property,value,members,share"


def test_export_honours_the_k_anonymity_floor(
    world: World,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_of = ("--as-of", NOW.isoformat())
    out_csv = tmp_path / "champions.csv"
    code, _, _ = _cli(
        capsys, world, "segment", "export", "champions", "--out", str(out_csv),
        "--columns", "country,rfm_segment,traits.plan", *as_of,
    )  # fmt: skip
    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert code == 0 and len(rows) == 20
    assert set(rows[0]) == {"person_id", "country", "rfm_segment", "traits.plan"}
    assert {r["rfm_segment"] for r in rows} == {"champions"}

    monkeypatch.setenv("AUTOCAP_SEGMENT_K_ANONYMITY", "21")
    refused = tmp_path / "refused.parquet"
    code, _, err = _cli(
        capsys, world, "segment", "export", "champions", "--out", str(refused), *as_of
    )
    assert code == 2 and not refused.exists()
    assert err.strip() == (
        "autocap: error: segment 'champions' has 20 members, below the k-anonymity floor of 21"
        " (AUTOCAP_SEGMENT_K_ANONYMITY): not exported (--force to export anyway)"
    )
    code, _, _ = _cli(
        capsys, world, "segment", "export", "champions", "--out", str(refused), "--force", *as_of
    )
    assert code == 0 and pq.read_table(refused).num_rows == 20

    code, _, err = _cli(
        capsys, world, "segment", "export", "champions", "--out", str(tmp_path / "x.txt")
    )
    assert code == 2 and "must end in .csv or .parquet" in err
    code, _, err = _cli(capsys, world, "segment", "show", "nobody")
    assert code == 2 and "unknown segment 'nobody' (defined: recent_buyers, champions" in err


def test_check_and_personas_json_from_a_real_process(world: World) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCAP_")}
    env |= {
        "AUTOCAP_DATA_DIR": str(world.root),
        "AUTOCAP_DEFINITIONS_PATH": str(world.root / "definitions.yaml"),
        "AUTOCAP_SEGMENT_MIN_SIZE": "10",
    }
    as_of = ["--as-of", NOW.isoformat()]

    def run(*args: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", *args, *as_of, "--format", "json"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        parsed: dict[str, object] = orjson.loads(done.stdout)
        return parsed

    check = run("segment", "check", "recent_buyers", "champions")
    by_name = {s["segment"]: s for s in check["segments"]}  # type: ignore[attr-defined]
    assert by_name["champions"]["conversion"] == 1.0
    # recent buyers are the champions (the only ones who bought in the last two days)
    assert by_name["champions"]["verdicts"] == [
        "duplicate: 100% of members shared with recent_buyers"
    ]
    assert check["overlap"]["champions"]["recent_buyers"] == 1.0  # type: ignore[index]
    # Week-over-week stability: now vs the 1 March snapshot (the latest a week back).
    day1 = set(_bought(world, DAY1 - timedelta(days=2), DAY1))
    day2 = set(_bought(world, NOW - timedelta(days=2), NOW))
    stability = len(day1 & day2) / len(day1 | day2)
    assert stability < 0.5
    recent = by_name["recent_buyers"]
    assert recent["stability"] == pytest.approx(stability)
    assert recent["stability_from"] == "2026-03-01"
    assert f"unstable: only {stability:.0%} the same members as on 2026-03-01" in recent["verdicts"]
    assert by_name["champions"]["stability"] == 1.0
    personas = run("personas", "--k", "2..3", "--seed", "1")
    assert personas["k"] in (2, 3) and personas["seed"] == 1
    sizes = [p["size"] for p in personas["personas"]]  # type: ignore[attr-defined]
    assert sum(sizes) == check["coverage"]["person"]["base"]  # type: ignore[index]
