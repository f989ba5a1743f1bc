"""The materializer on a real lake and real DuckDB: defined events apply to history,
incrementally, and funnels become tables analysts can query."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.definitions import Definitions, load_definitions
from pipeline.errors import ConfigError
from pipeline.warehouse.catalog import CatalogPublisher, publish_catalog, published_lake
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.materialize import Materializer
from pipeline.warehouse.paths import PathsSpec, run_paths
from pipeline.warehouse.query import run_query
from pipeline.warehouse.retention import RetentionSpec, run_retention
from pipeline.warehouse.schema import records_to_table

BUY = {"tag": "button", "id": "buy", "classes": ["btn"], "text": "Buy now", "nth_child": 1}
CARD = {"tag": "div", "classes": ["card"], "nth_child": 2}


def _event(n: int, *, person: str, name: str, minute: int, buy: bool = False) -> dict[str, object]:
    at = f"2026-11-23T10:{minute:02d}:00.000Z"
    return {
        "event_id": f"e{n}",
        "type": "track",
        "event": name,
        "anonymous_id": person,
        "person_id": person,
        "timestamp": at,
        "received_at": at,
        "context": {"page": {"url": "https://shop.example/pricing"}},
        "elements": [BUY, CARD] if buy else [CARD],
        "defined_events": [],  # stage 1 knew no definitions when these arrived
    }


DEFS_V1 = """
events:
  - name: Clicked Buy
    match: {event: $click, selector: "div.card > button#buy"}
funnels:
  - name: click_then_signup
    steps: [$pageview, $click, Signed Up]
    window: 1d
  - name: buy_then_signup
    steps: [$pageview, Clicked Buy, Signed Up]
    window: 1d
"""

DEFS_V2 = """
events:
  - name: Clicked Buy
    match: {event: $click, selector: "div.card > button#buy", url: "*/checkout*"}
"""


@pytest.fixture
def world(tmp_path: Path) -> tuple[Lake, Path, Path]:
    lake = Lake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    publish_catalog(warehouse, lake)
    rows = []
    for p in range(3):
        person = f"a:p{p}"
        rows.append(_event(10 * p, person=person, name="$pageview", minute=p))
        rows.append(_event(10 * p + 1, person=person, name="$click", minute=p + 1, buy=p < 2))
        if p == 0:
            rows.append(_event(10 * p + 2, person=person, name="Signed Up", minute=p + 5))
    lake.write("events", records_to_table(rows))
    publish_catalog(warehouse, lake)
    return lake, warehouse, tmp_path / "definitions.yaml"


def _materializer(lake: Lake, warehouse: Path, definitions: Path) -> Materializer:
    clock = iter(datetime(2026, 11, 23, 12, n, tzinfo=UTC) for n in range(60))
    return Materializer(
        lake,
        published_lake(lake),
        CatalogPublisher(warehouse, lake, 0.0),
        warehouse,
        lambda: load_definitions(definitions),
        grace_s=0.0,
        clock=lambda: next(clock),
    )


def _defined(warehouse: Path) -> list[tuple[object, ...]]:
    sql = "SELECT name, event_id FROM defined_events ORDER BY 2"
    return run_query(warehouse, sql).rows


def test_a_definition_added_later_applies_to_history_and_runs_incrementally(
    world: tuple[Lake, Path, Path],
) -> None:
    lake, warehouse, definitions = world
    assert _defined(warehouse) == []  # stage 1 tagged nothing
    definitions.write_text(DEFS_V1)
    materializer = _materializer(lake, warehouse, definitions)

    first = materializer.run_once()
    assert first.events_tagged == 7
    assert _defined(warehouse) == [("Clicked Buy", "e1"), ("Clicked Buy", "e11")]

    # Nothing new: nothing re-tagged. New events: only they are looked at.
    assert materializer.run_once().events_tagged == 0
    lake.write(
        "events", records_to_table([_event(40, person="a:p4", name="$click", minute=9, buy=True)])
    )
    assert materializer.run_once().events_tagged == 1
    assert ("Clicked Buy", "e40") in _defined(warehouse)


def test_a_changed_definition_retags_everything(world: tuple[Lake, Path, Path]) -> None:
    lake, warehouse, definitions = world
    definitions.write_text(DEFS_V1)
    materializer = _materializer(lake, warehouse, definitions)
    materializer.run_once()
    definitions.write_text(DEFS_V2)  # now only clicks on a checkout page count
    report = materializer.run_once()
    assert report.events_tagged == 7
    assert _defined(warehouse) == []
    assert materializer.run_once(full=True).events_tagged == 7  # --full: all again


def test_funnels_become_tables_and_a_removed_funnel_disappears(
    world: tuple[Lake, Path, Path],
) -> None:
    lake, warehouse, definitions = world
    definitions.write_text(DEFS_V1)
    materializer = _materializer(lake, warehouse, definitions)
    report = materializer.run_once()
    assert report.funnels == {"click_then_signup": 3, "buy_then_signup": 3}
    rows = run_query(
        warehouse, "SELECT step_index, step, count FROM funnel_click_then_signup ORDER BY 1"
    ).rows
    assert rows == [(1, "$pageview", 3), (2, "$click", 3), (3, "Signed Up", 1)]
    # A step that is a defined event: the funnel sees the materializer's tags over history
    # (stage 1 tagged nothing when these events arrived).
    rows = run_query(
        warehouse, "SELECT step_index, step, count FROM funnel_buy_then_signup ORDER BY 1"
    ).rows
    assert rows == [(1, "$pageview", 3), (2, "Clicked Buy", 2), (3, "Signed Up", 1)]

    definitions.write_text(DEFS_V2)
    materializer.run_once()
    tables = run_query(warehouse, "SELECT table_name FROM information_schema.tables").rows
    assert ("funnel_click_then_signup",) not in tables
    assert ("funnel_buy_then_signup",) not in tables


def test_bad_funnel_definitions_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "definitions.yaml"
    path.write_text("funnels:\n  - name: Bad-Name\n    steps: [a, b]\n    window: 1d\n")
    with pytest.raises(ConfigError, match="lower-case letters"):
        load_definitions(path)
    path.write_text("funnels:\n  - name: ok\n    steps: [a, b]\n    window: 1x\n")
    with pytest.raises(ConfigError, match="funnel 'ok': bad window"):
        load_definitions(path)
    path.write_text("funnels:\n  - name: ok\n    steps: [a, b]\n    window: 1d\n" * 2)
    with pytest.raises(ConfigError, match="'funnels' given twice"):
        load_definitions(path)
    path.write_text("funnels:\n" + "  - name: ok\n    steps: [a, b]\n    window: 1d\n" * 2)
    with pytest.raises(ConfigError, match="funnel 'ok' is defined twice"):
        load_definitions(path)
    assert load_definitions(tmp_path / "missing.yaml") == Definitions()


def test_cli_materialize_once_and_its_errors(world: tuple[Lake, Path, Path]) -> None:
    _, warehouse, definitions = world
    definitions.write_text(DEFS_V1)
    env_base = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCAP_")}
    env = {
        **env_base,
        "AUTOCAP_DATA_DIR": str(warehouse.parent),
        "AUTOCAP_DEFINITIONS_PATH": str(definitions),
    }
    # The data dir's lake is tmp_path/lake: the layout autocap itself uses.
    run = [sys.executable, "-m", "pipeline", "materialize", "--once"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "tagged 7 events (incremental), funnel_click_then_signup, funnel_buy" in done.stdout
    assert _defined(warehouse) == [("Clicked Buy", "e1"), ("Clicked Buy", "e11")]
    again = subprocess.run([*run, "--full"], env=env, capture_output=True, text=True, timeout=120)
    assert "tagged 7 events (full)" in again.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "pipeline", "materialize", "--full"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "autocap: error: --full goes with --once (a running materializer re-tags on its own)"
    ]


def test_retention_and_paths_see_definitions_applied_to_history(
    world: tuple[Lake, Path, Path],
) -> None:
    lake, warehouse, definitions = world
    definitions.write_text(DEFS_V1)

    def ask() -> tuple[int, int]:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            retention = run_retention(
                con, RetentionSpec(start_event="Clicked Buy", return_event="$click")
            )
            paths = run_paths(con, PathsSpec(event="Clicked Buy", per="person"))
        finally:
            con.close()
        return retention.overall.people, paths.occurrences

    assert ask() == (0, 0)  # stage 1 tagged nothing
    _materializer(lake, warehouse, definitions).run_once()
    assert ask() == (2, 2)  # p0 and p1 clicked Buy
