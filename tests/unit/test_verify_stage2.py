"""``autocap verify``'s stage-2 checks on a small real lake: stage 1 and stage 2 run as the
stream runs them (events in arrival order through ``process``, ``fold_profile``,
``account_updates`` and ``fold_account``), written to Parquet, catalogued, verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collectors.http.normalize import Receipt, normalize
from pipeline.accounts import account_record, account_updates, fold_account
from pipeline.batch.verify import VerifyReport
from pipeline.batch.verify_stage2 import verify_stage2
from pipeline.definitions import Definitions, load_definitions
from pipeline.identity import device_key
from pipeline.profiles import fold_profile, profile_record
from pipeline.sessions import SessionRules
from pipeline.stream.enrich import process
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.lake import Lake
from pipeline.warehouse.schema import TABLES, records_to_table
from tests.unit.test_profiles import DEFINITIONS_YAML

RULES = SessionRules(timedelta(minutes=30), timedelta(hours=24))
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> Definitions:
    path = tmp_path_factory.mktemp("defs") / "definitions.yaml"
    path.write_text(DEFINITIONS_YAML)
    return load_definitions(path)


def _events() -> list[dict[str, Any]]:
    """Five devices; devices 0-2 identify and join one of two accounts; device 3 is a
    second device of user-0 (so that person's events come through two devices)."""
    events = []
    for d in range(5):
        at = T0 + timedelta(minutes=d)
        for n in range(5):
            at += timedelta(minutes=(3, 20, 50, 5, 9)[n])
            message: dict[str, Any] = {
                "type": "track",
                "event": ("$pageview", "Signed Up", "Upgraded")[n % 3],
                "anonymousId": f"dev-{d}",
                "messageId": f"m-{d}-{n}",
                "timestamp": at.isoformat(),
                "properties": {"plan": ("free", "pro")[d % 2], "amount": n},
                "context": {"page": {"url": f"https://x.io/pricing/{n}"}, "locale": "en-US"},
            }
            user = f"user-{d % 3}"
            if n == 1 and d < 4:
                message |= {"type": "identify", "userId": user, "traits": {"title": f"T{d}"}}
            if n == 2 and d < 3:
                account = {"groupId": f"acct-{d % 2}", "traits": {"employees": 30 + d}}
                message |= {"type": "group", "userId": user, **account}
            events.append(normalize(message, Receipt.at(at)))
    return events


def _stream(definitions: Definitions) -> dict[str, list[dict[str, Any]]]:
    devices: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    accounts: dict[str, Any] = {}
    out: dict[str, list[dict[str, Any]]] = {"events": [], "profiles": [], "accounts": []}
    for record in sorted(_events(), key=lambda e: (e["received_at"], e["event_id"])):
        key = device_key(record)
        identity, session, result = process(
            *devices.get(key, (None, None)), record, RULES, definitions
        )
        devices[key] = (identity, session)
        enriched = result.enriched
        out["events"].append(enriched)
        person = enriched["person_id"]
        profiles[person], _ = fold_profile(profiles.get(person), enriched, definitions)
        profile = profile_record(profiles[person], definitions)
        out["profiles"].append(profile)
        for update in account_updates(enriched, profile):
            account = update["account_id"]
            accounts[account], _ = fold_account(accounts.get(account), update)
            out["accounts"].append(account_record(accounts[account]))
    return out


def _verify(
    tmp_path: Path, tables: dict[str, list[dict[str, Any]]], definitions: Definitions
) -> VerifyReport:
    lake = Lake(tmp_path / "lake")
    for table, rows in tables.items():
        lake.ensure_table(table, TABLES[table][1])
        lake.write(table, records_to_table(rows, TABLES[table][1]))
    publish_catalog(tmp_path / "warehouse.duckdb", lake)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        report = VerifyReport()
        verify_stage2(con, report, definitions, timedelta(0))
        return report
    finally:
        con.close()


def test_the_streams_profiles_and_accounts_verify_equal(
    tmp_path: Path, definitions: Definitions
) -> None:
    report = _verify(tmp_path, _stream(definitions), definitions)
    profiles, accounts = report.checks["profiles"], report.checks["accounts"]
    assert not report.failed(strict=True), report.to_json()
    assert profiles.compared == 8  # 5 anonymous keys + user-0, user-1, user-2
    assert accounts.compared == 2


def test_a_wrong_count_and_a_missing_account_are_caught(
    tmp_path: Path, definitions: Definitions
) -> None:
    stream = _stream(definitions)
    # Not the person with the newest event: that one is `recent` (may lag the lake).
    last = [p for p in stream["profiles"] if p["person_id"] == "u:user-1"][-1]
    stream["profiles"].append(
        {
            **last,
            "version": last["version"] + 1,
            "properties": {**last["properties"], "pricing_views": 99},
        }
    )
    stream["accounts"] = [a for a in stream["accounts"] if a["account_id"] != "acct-1"]
    report = _verify(tmp_path, stream, definitions)
    assert report.failed()
    assert report.checks["profiles"].differences == {"properties.pricing_views": 1}
    example = report.checks["profiles"].examples["properties.pricing_views"][0]
    assert example["person_id"] == last["person_id"] and example["stream"] == 99
    assert report.checks["accounts"].differences == {"missing_in_stream": 1}


def test_trait_order_is_explained_for_a_person_on_two_devices(
    tmp_path: Path, definitions: Definitions
) -> None:
    stream = _stream(definitions)
    # user-0's events came through dev-0 and dev-3: the stream may have seen their $set in
    # either order. A different title is explained; a different event count is not.
    mine = [p for p in stream["profiles"] if p["person_id"] == "u:user-0"][-1]
    changed = {**mine, "version": mine["version"] + 1, "traits": {"title": "other"}}
    report = _verify(tmp_path, {**stream, "profiles": [*stream["profiles"], changed]}, definitions)
    assert not report.failed() and report.failed(strict=True)
    assert report.checks["profiles"].expected == {"traits": 1}
    assert report.checks["profiles"].explained_examples["traits"][0]["explained_by"] == (
        "many_devices"
    )
    changed["event_count"] += 1
    report = _verify(
        tmp_path / "2", {**stream, "profiles": [*stream["profiles"], changed]}, definitions
    )
    assert report.checks["profiles"].differences == {"event_count": 1}
