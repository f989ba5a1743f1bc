"""autocap verify on a small real lake: stage 1 run as the stream runs it (events in arrival
order through ``process``), written to Parquet, catalogued, then verified in batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collectors.http.normalize import Receipt, normalize
from pipeline.batch.verify import VerifyReport, verify_connection
from pipeline.identity import DeviceIdentity, device_key
from pipeline.sessions import SessionRules, SessionState, summary
from pipeline.stream.enrich import process
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES, records_to_table

RULES = SessionRules(timedelta(minutes=30), timedelta(hours=24))
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _events() -> list[dict[str, Any]]:
    """Six devices, gaps around the 30-minute rule, identifies, one alias; and a last event
    hours later so every device's sessions are closed."""
    events = []
    for d in range(6):
        at = T0 + timedelta(minutes=d)
        for n in range(6):
            at += timedelta(minutes=(5, 31, 10, 45, 2, 29)[n])
            message: dict[str, Any] = {
                "type": "track",
                "event": "$pageview",
                "anonymousId": f"dev-{d}",
                "messageId": f"m-{d}-{n}",
                "timestamp": at.isoformat(),
                "context": {"page": {"url": f"https://shop.example/{n}"}},
            }
            if n == 3 and d % 2 == 0:
                message |= {"type": "identify", "userId": f"user-{d // 4}"}
            if n == 5 and d == 4:
                message = {**message, "type": "alias", "previousId": "user-1", "userId": "u-9"}
            events.append(normalize(message, Receipt.at(at)))
    last = T0 + timedelta(hours=8)
    events.append(
        normalize(
            {"type": "track", "event": "x", "anonymousId": "late-comer", "messageId": "z"},
            Receipt.at(last),
        )
    )
    return events


def _stream(arrivals: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Stage 1 over ``arrivals`` in that order, as the worker does; then the idle timer
    summarises every session still open."""
    identities: dict[str, DeviceIdentity] = {}
    sessions: dict[str, SessionState | None] = {}
    out: dict[str, list[dict[str, Any]]] = {"events": [], "identities": [], "sessions": []}
    for record in arrivals:
        key = device_key(record)
        identity, session, result = process(identities.get(key), sessions.get(key), record, RULES)
        identities[key], sessions[key] = identity, session
        out["events"].append(result.enriched)
        out["identities"] += result.identities
        out["sessions"] += result.sessions
    out["sessions"] += [summary(s) for s in sessions.values() if s is not None]
    return out


def _verify(tmp_path: Path, tables: dict[str, list[dict[str, Any]]]) -> VerifyReport:
    lake = Lake(tmp_path / "lake")
    for table, rows in tables.items():
        lake.ensure_table(table, TABLES[table][1])
        lake.write(table, records_to_table(rows, TABLES[table][1]))
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        return verify_connection(con, RULES)
    finally:
        con.close()


def test_the_streams_answers_verify_equal(tmp_path: Path) -> None:
    events = _events()
    report = _verify(tmp_path, _stream(sorted(events, key=lambda e: e["received_at"])))
    assert not report.failed(strict=True), report.to_json()
    assert report.events == len(events) and report.devices == 7
    assert report.checks["events"].compared == len(events)
    assert report.checks["identities"].compared == 5  # 3 links, 2 alias edges
    # Every device's sessions ended hours before the newest event: all compared.
    assert report.checks["sessions"].compared > 14
    assert report.checks["sessions"].skipped == 1  # the late-comer's, still open


def test_a_corrupted_session_id_is_caught(tmp_path: Path) -> None:
    stream = _stream(sorted(_events(), key=lambda e: e["received_at"]))
    stream["events"][7]["session_id"] = "f" * 32
    report = _verify(tmp_path, stream)
    assert report.failed()
    assert report.checks["events"].differences == {"session_id": 1}
    example = report.checks["events"].examples["session_id"][0]
    assert example["event_id"] == stream["events"][7]["event_id"]
    assert example["stream"] == "f" * 32 and example["batch"] != "f" * 32
    assert "1 session_id" in report.verdict()


def test_missing_ledger_entry_and_session_summary_are_caught(tmp_path: Path) -> None:
    stream = _stream(sorted(_events(), key=lambda e: e["received_at"]))
    dropped = stream["identities"].pop(0)
    stream["sessions"][2]["events"] += 1
    report = _verify(tmp_path, stream)
    assert report.checks["identities"].differences == {"missing_in_stream": 1}
    assert (
        report.checks["identities"].examples["missing_in_stream"][0]["event_id"]
        == (dropped["event_id"])
    )
    assert report.checks["sessions"].differences == {"summary": 1}


def test_out_of_order_arrival_is_explained_not_failed(tmp_path: Path) -> None:
    events = _events()
    # dev-1's first event reaches the stream last (received hours late): the stream marks
    # it late and leaves it out of any session; the batch places it.
    first = next(e for e in events if e["event_id"] == "m-1-0")
    first["received_at"] = "2026-11-20T20:00:00.000Z"
    report = _verify(tmp_path, _stream(sorted(events, key=lambda e: e["received_at"])))
    assert report.late_events == 1
    assert report.devices_explained == {"out_of_order": 1}
    assert report.checks["events"].expected["session_id"] == 1
    assert not report.failed()
    assert report.failed(strict=True)


def test_missing_warehouse_is_one_clear_error(tmp_path: Path) -> None:
    from pipeline.batch.verify import verify_warehouse
    from pipeline.errors import QueryError
    from pipeline.settings import Settings

    with pytest.raises(QueryError, match="no warehouse"):
        verify_warehouse(Settings(data_dir=tmp_path / "nothing"))
