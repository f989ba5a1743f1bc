"""``autocap forget ID``: stop new events, remove every row, tombstone every key, and
record the request in the audit log."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from pipeline.cluster import running_bootstrap
from pipeline.errors import ForgetError
from pipeline.forget.forgetlist import ForgetList, forget_list_path
from pipeline.forget.keys import PersonKeys, check_id, resolve_keys
from pipeline.forget.purge import purge_until_clean
from pipeline.forget.tombstones import tombstone_keys
from pipeline.forget.workers import send_forget_records, wait_processed
from pipeline.settings import Settings
from pipeline.timeutil import format_ts

__all__ = ["ForgetReport", "audit_path", "forget"]


def audit_path(settings: Settings) -> Path:
    """The audit log: one JSON line per forget request."""
    return settings.data_dir / "audit" / "forget.jsonl"


@dataclass(frozen=True)
class ForgetReport:
    """What one request did (also the audit line)."""

    at: str
    id: str
    person_ids: int
    anonymous_ids: int
    user_ids: int
    events: int
    accounts: int
    rows_removed: int
    files_rewritten: int
    passes: int
    tombstones: int
    worker_forget_records: int
    #: The stream's workers processed the forget records (False: no worker was running,
    #: or one lags; it deletes the state when it gets there).
    workers_forgot: bool
    kafka: str


def _resolve(settings: Settings, asked: str) -> PersonKeys:
    if not settings.warehouse_path.exists():
        return PersonKeys(asked)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return resolve_keys(con, asked)
    except duckdb.Error as exc:
        raise ForgetError(
            f"forget: cannot read the warehouse: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        con.close()


def forget(settings: Settings, raw_id: str, settle_s: float = 10.0) -> ForgetReport:
    """Forget the person behind ``raw_id`` (person_id, user_id or anonymous_id)."""
    asked = check_id(raw_id)
    forget_list = ForgetList(forget_list_path(settings.data_dir))
    forget_list.add([asked])  # first: collectors drop its new events from now on
    keys = _resolve(settings, asked)
    forget_list.add(keys.people_ids)
    _audit(settings, {"at": format_ts(datetime.now(UTC)), "id": asked, "status": "requested"})
    bootstrap = running_bootstrap(settings)
    # Running workers drop the person's state first: their timers would otherwise write
    # sessions and cohort changes for them after the purge. Once the stream group has
    # committed past the forget records, the purge's settle passes catch what they wrote.
    placed, workers_forgot = [], False
    if bootstrap:
        placed = send_forget_records(settings, bootstrap, keys)
        workers_forgot = wait_processed(settings, bootstrap, placed, settle_s * 6)
    result = purge_until_clean(settings.data_dir, keys, settle_s)
    if not result.clean:
        raise ForgetError(
            f"forget: rows for {asked!r} kept arriving after {result.passes} passes; "
            "run `autocap forget` again"
        )
    tombstones = tombstone_keys(settings, bootstrap, keys) if bootstrap else 0
    report = ForgetReport(
        at=format_ts(datetime.now(UTC)),
        id=asked,
        person_ids=len(keys.of("person_id")),
        anonymous_ids=len(keys.of("anonymous_id")),
        user_ids=len(keys.of("user_id")),
        events=len(keys.of("event_id")),
        accounts=len(keys.of("account_id")),
        rows_removed=result.rows_removed,
        files_rewritten=result.files_rewritten,
        passes=result.passes,
        tombstones=tombstones,
        worker_forget_records=len(placed),
        workers_forgot=workers_forgot,
        kafka=bootstrap or "not running: changelogs not tombstoned",
    )
    _audit(settings, asdict(report) | {"status": "done"})
    return report


def _audit(settings: Settings, line: dict[str, object]) -> None:
    log = audit_path(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        fh.write(orjson.dumps(line) + b"\n")
        fh.flush()
