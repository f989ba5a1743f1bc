"""The cohort views, verify's cohort check and ``autocap cohort`` on a small real lake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.batch.verify import VerifyReport, verify_cohorts
from pipeline.definitions import Definitions, load_definitions
from pipeline.errors import QueryError
from pipeline.timeutil import format_ts
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.cohort_views import cohort_members, explain_member, list_cohorts
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES, records_to_table

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFINITIONS = """
cohorts:
  - name: doers
    where: {performed: {event: A, at_least: 2, within: 1h}}
  - name: teams
    of: account
    where: {users_performed: {event: A, at_least_users: 1, within: 1h}}
"""


def _change(cohort: str, subject: str, change: str, minutes: int, event_id: str | None) -> Any:
    kind = "account" if subject.startswith("acct") else "person"
    return {
        "cohort": cohort,
        "subject_kind": kind,
        "subject_id": subject,
        "change": change,
        "at": format_ts(NOW - timedelta(minutes=minutes)),
        "criterion": "performed A at least 2 times within 1h",
        "event_id": event_id,
        "detail": {"performed A at least 2 times within 1h": 2},
    }


def _event(event_id: str, person: str, minutes: int, account: str | None = None) -> Any:
    at = format_ts(NOW - timedelta(minutes=minutes))
    return {
        "event_id": event_id,
        "type": "group" if account else "track",
        "event": "A",
        "person_id": person,
        "account_id": account,
        "timestamp": at,
        "received_at": at,
    }


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, Definitions]]:
    changes = [
        _change("doers", "a:x", "enter", 50, "e1"),
        _change("doers", "a:x", "enter", 50, "e1"),  # sent again after a crash
        _change("doers", "a:x", "enter", 45, "e2"),  # a replay re-evaluated
        _change("doers", "a:x", "exit", 40, None),
        _change("doers", "a:y", "enter", 30, "e3"),
        _change("teams", "acct-1", "enter", 30, "e3"),
    ]
    tables: dict[str, list[Any]] = {
        "cohort_changes": changes,
        "identities": [
            {
                "kind": "link",
                "from_person": "a:y",
                "to_person": "u:1",
                "event_id": "e0",
                "timestamp": format_ts(NOW - timedelta(hours=2)),
            }
        ],
        "events": [
            _event("e3", "a:y", 30, account="acct-1"),
            _event("e4", "a:y", 20),
            _event("e5", "a:z", 10),
        ],
    }
    lake = Lake(tmp_path / "lake")
    for table, rows in tables.items():
        lake.ensure_table(table, TABLES[table][1])
        lake.write(table, records_to_table(rows, TABLES[table][1]))
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    (tmp_path / "definitions.yaml").write_text(DEFINITIONS)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        yield con, load_definitions(tmp_path / "definitions.yaml")
    finally:
        con.close()


def test_history_keeps_each_change_once_and_membership_follows_merges(catalog: Any) -> None:
    con, _ = catalog
    history = con.execute(
        "SELECT subject_id, change, event_id FROM cohort_history WHERE cohort = 'doers'"
        ' ORDER BY "at"'
    ).fetchall()
    assert history == [("a:x", "enter", "e1"), ("a:x", "exit", None), ("a:y", "enter", "e3")]
    types = dict(
        con.execute("SELECT column_name, column_type FROM (DESCRIBE cohort_history)").fetchall()
    )
    assert types["at"] == "TIMESTAMP"
    members = con.execute(
        "SELECT cohort, subject_kind, subject_id, since, event_id FROM cohort_membership"
        " ORDER BY ALL"
    ).fetchall()
    since = (NOW - timedelta(minutes=30)).replace(tzinfo=None)
    assert members == [
        ("doers", "person", "u:1", since, "e3"),  # a:y was linked to u:1
        ("teams", "account", "acct-1", since, "e3"),
    ]


def test_verify_agrees_then_catches_a_missing_member(catalog: Any) -> None:
    con, definitions = catalog
    report = VerifyReport()
    verify_cohorts(report, con, definitions, NOW, timedelta(minutes=1))
    check = report.checks["cohorts"]
    # Persons a:y, a:z x doers; acct-1 x teams.
    assert check.compared == 3 and not check.differences and not check.expected, check
    # An hour on, a:y's two events left the window: the stream (which never said exit) and
    # the batch differ, unexplained.
    later = VerifyReport()
    verify_cohorts(later, con, definitions, NOW + timedelta(hours=1), timedelta(minutes=1))
    assert later.checks["cohorts"].differences == {"extra_in_stream": 2}, later.to_json()
    # Each difference names the criterion that decided the batch's verdict.
    shown = later.checks["cohorts"].examples["extra_in_stream"]
    assert all(example["criterion"] for example in shown), shown
    # Just after a:y's first event left the window (its account still has the second): a
    # flip within the settle time is an expected timing difference instead.
    soon = VerifyReport()
    verify_cohorts(
        soon, con, definitions, NOW + timedelta(minutes=30, seconds=30), timedelta(minutes=1)
    )
    assert soon.checks["cohorts"].expected == {"extra_in_stream": 1}
    assert not soon.failed() and soon.failed(strict=True)


def test_cohort_commands(catalog: Any) -> None:
    con, definitions = catalog
    assert list_cohorts(con, definitions).rows == [
        ("doers", "person", "performed A at least 2 times within 1h", 1),
        ("teams", "account", "at least 1 users performed A within 1h", 1),
    ]
    assert [r[1] for r in cohort_members(con, definitions, "doers").rows] == ["u:1"]
    why = explain_member(con, definitions, "doers", "u:1", NOW)
    assert why.rows[0][:2] == ("entered", "performed A at least 2 times within 1h")
    assert why.rows[1] == ("now", "performed A at least 2 times within 1h", "a:y", None, True)
    assert why.rows[2][2:] == ("2", None, True)
    with pytest.raises(QueryError, match=r"unknown cohort 'nope'.*doers, teams"):
        cohort_members(con, definitions, "nope")
    with pytest.raises(QueryError, match="no person 'u:404'"):
        explain_member(con, definitions, "doers", "u:404", NOW)


def test_cli_names_a_bad_cohort_definition_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("cohorts:\n  - name: c\n    where: {performed: {event: A, within: 7x}}\n")
    monkeypatch.setenv("AUTOCAP_DEFINITIONS_PATH", str(bad))
    assert main(["cohort", "list", "--data-dir", str(tmp_path)]) == 2  # a ConfigError
    err = capsys.readouterr().err.strip()
    assert err.startswith("autocap: error:") and "cohort 'c': bad within '7x'" in err
    assert "\n" not in err
