"""`autocap report` without a browser: chart configs, the page, the vendored libraries, and
a report over a small real warehouse."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.report.build import write_report
from pipeline.report.charts import Chart, Table, funnel_bars, heat_color, retention
from pipeline.report.page import VENDOR_DIR, Section, render_page
from pipeline.settings import Settings
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import ACCOUNT_SCHEMA, PROFILE_SCHEMA, records_to_table
from tests.unit.funnel_lake import build_lake

DAY = 86_400_000


def test_vendored_libraries_are_the_pinned_npm_files() -> None:
    lines = [
        ln.split()
        for ln in (VENDOR_DIR / "versions.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    assert {ln[0] for ln in lines} == {"chart.js", "chartjs-chart-matrix"}
    for _name, _version, _source, file, sha in lines:
        assert hashlib.sha256((VENDOR_DIR / file).read_bytes()).hexdigest() == sha


def test_heat_colors_go_from_white_to_blue() -> None:
    assert heat_color(0) == "rgba(255,255,255,1)"
    assert heat_color(1) == "rgba(51,88,255,1)"
    assert heat_color(7) == heat_color(1)


def test_funnel_bars_show_reached_and_dropped() -> None:
    steps = [
        {"step": "A", "count": 10, "dropped": 0, "in_flight": 0},
        {"step": "B", "count": 6, "dropped": 3, "in_flight": 1},
        {"step": "C", "count": 2, "dropped": 4, "in_flight": 0},
    ]
    config = funnel_bars(steps)
    went_on, dropped, flying = config["data"]["datasets"]
    assert went_on["data"] == [6, 2, 2]  # the last bar: converted
    assert dropped["data"] == [3, 4, 0]  # dropped after A, after B
    assert flying["data"] == [1, 0, 0]
    totals = [sum(d["data"][k] for d in config["data"]["datasets"]) for k in range(3)]
    assert totals == [10, 6, 2]  # each bar is the people who reached its step
    assert config["options"]["scales"]["y"]["stacked"]


def test_retention_matrix_has_one_cell_per_cohort_week() -> None:
    table = Table(
        ["cohort_week", "cohort_size", "week_offset", "people", "retained"],
        [("2026-01-05", 4, 0, 4, 1.0), ("2026-01-05", 4, 1, 1, 0.25), ("2026-01-12", 2, 0, 2, 1.0)],
    )
    config = retention(table)
    assert config["type"] == "matrix"
    assert config["grid"] == {"columns": 2, "rows": 2}
    cells = config["data"]["datasets"][0]["data"]
    assert cells[1] == {"x": "week 1", "y": "2026-01-05 (4)", "v": 0.25, "people": 1}
    assert config["options"]["scales"]["y"]["labels"] == ["2026-01-05 (4)", "2026-01-12 (2)"]


def test_page_escapes_data_that_could_end_its_script() -> None:
    evil = "</script><script>alert(1)</script>"
    table = Table(["event", "events"], [(evil, 1)])
    chart = Chart(
        "top", "Top", "about", "SELECT 1", {"type": "bar", "data": {"labels": [evil]}}, table
    )
    page = render_page("t", "s", [Section("S", "i", [chart])])
    assert "<script>alert(1)" not in page
    data = re.search(r'id="autocap-charts">(.*?)</script>', page, re.S)
    assert data is not None
    assert json.loads(data.group(1))[0]["config"]["data"]["labels"] == [evil]


@pytest.fixture
def warehouse(tmp_path: Path) -> Settings:
    events: list[tuple[str, str, int]] = []  # (person, event, ms after 2026-01-01)
    extra: dict[str, dict] = {}
    for p in range(6):
        person = f"p{p}"
        for i, name in enumerate(["Viewed Pricing", "Signed Up", "Upgraded"][: 1 + p % 3]):
            events.append((person, name, p * 1000 + i * 60_000))
        if p % 2 == 0:  # active again a week later: retention
            events.append((person, "$pageview", 8 * DAY + p))
    i = len(events)
    events.append(("p0", "Order Completed", 2 * DAY))
    extra[f"e{i}"] = {"properties": {"revenue": 59.5}}
    events.append(("p1", "group-call", 3 * DAY))
    extra[f"e{i + 1}"] = {
        "type": "group",
        "event": None,
        "account_id": "acme.io",
        "traits": {"industry": "Software", "employees": 250},
    }
    build_lake(tmp_path, events, **extra)
    # What stage 2 made of the group call (the report reads the `accounts` view).
    lake = Lake(tmp_path / "lake")
    account = {"account_id": "acme.io", "version": 1, "industry": "Software", "employees": 250}
    lake.write("accounts", records_to_table([account], ACCOUNT_SCHEMA))
    profiles = [
        {
            "person_id": f"p{p}",
            "version": 1 + p % 3,
            "first_seen": "2026-01-01T00:00:00.000Z",
            "last_seen": f"2026-01-0{1 + p}T00:00:00.000Z",
            "event_count": 1 + p % 3,
            "session_count": 1,
            "device": "Desktop" if p % 2 else "Mobile",
            "account_ids": ["acme.io"] if p == 1 else [],
        }
        for p in range(6)
    ]
    lake.write("profiles", records_to_table(profiles, PROFILE_SCHEMA))
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    definitions = tmp_path / "definitions.yaml"
    definitions.write_text(
        "funnels:\n  - name: trial\n    steps: [Viewed Pricing, Signed Up, Upgraded]\n"
        "    window: 1d\n"
        "segments:\n  - name: upgraded\n    where: {performed: Upgraded}\n"
        "  - name: signed_up\n    where: {performed: Signed Up}\n"
    )
    return Settings(data_dir=tmp_path, definitions_path=definitions)


def test_report_over_a_real_warehouse(warehouse: Settings, tmp_path: Path) -> None:
    out = write_report(warehouse, tmp_path / "report.html")
    page = out.read_text()
    charts = json.loads(re.search(r'id="autocap-charts">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    by_key = {c["key"]: c["config"] for c in charts}
    assert set(by_key) == {
        "sessions_per_day",
        "top_events",
        "defined_events",
        "retention",
        "funnel_trial",
        "accounts_by_industry",
        "people_by_role",
        "purchases_per_day",
        "segment_sizes",
        "segment_overlap",
        "account_tiers",
        "personas",
    }
    bars = by_key["funnel_trial"]["data"]["datasets"]
    assert [sum(d["data"][k] for d in bars) for k in range(3)] == [6, 4, 2]
    assert by_key["purchases_per_day"]["data"]["datasets"][1]["data"] == [59.5]
    assert by_key["accounts_by_industry"]["data"]["labels"] == ["Software"]
    cells = by_key["retention"]["data"]["datasets"][0]["data"]
    assert {c["x"] for c in cells} == {"week 0", "week 1"}
    assert "SQL behind this chart" in page and "FROM events" in page
    assert (
        "autocap funnel --steps &#x27;Viewed Pricing,Signed Up,Upgraded&#x27; --window 1d" in page
    )
    sizes = by_key["segment_sizes"]
    assert sizes["data"]["labels"] == ["upgraded", "signed_up"]
    # p2, p5; p1, p2, p4, p5 (p1 also made the group call: a nameless event, not Upgraded)
    assert sizes["data"]["datasets"][0]["data"] == [2, 4]
    cells = {
        (c["x"], c["y"]): c["v"] for c in by_key["segment_overlap"]["data"]["datasets"][0]["data"]
    }
    assert cells[("upgraded", "signed_up")] == 0.5 and cells[("upgraded", "upgraded")] == 1.0
    tiers = by_key["account_tiers"]["data"]
    assert tiers["labels"] == ["B"]  # acme.io: fit (250 employees), no engaged people
    assert sum(d["data"][0] for d in tiers["datasets"]) == 1
    people = by_key["personas"]["data"]["datasets"][0]["data"]
    assert sum(people) == 6 and 3 <= len(people) <= 5  # everyone in exactly one persona
    assert "autocap personas --k 3..5" in page and "autocap segment show upgraded" in page
    assert "Chart.js v4.5.1" in page  # the library is inlined: the file opens offline
    assert "<script src=" not in page


def test_report_errors_are_one_clear_line(
    warehouse: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        write_report(warehouse, tmp_path)
    empty = tmp_path / "nothing"
    code = main(["report", "--data-dir", str(empty), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.startswith("autocap: error: no warehouse at ")
    assert main(["up", "--days", "3"]) != 0
    assert "--days goes with --demo" in capsys.readouterr().err
