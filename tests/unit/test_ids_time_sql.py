import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.ids import uuid7
from pipeline.sqlfiles import render_sql, sql_string_literal
from pipeline.timeutil import format_ts, parse_ts


def test_uuid7_layout_and_order() -> None:
    a = uuid.UUID(uuid7(1_700_000_000_000, bytes(10)))
    b = uuid.UUID(uuid7(1_700_000_000_001, bytes(10)))
    assert a.version == 7 and a.variant == uuid.RFC_4122
    assert a.int >> 80 == 1_700_000_000_000
    assert str(a) < str(b)
    with pytest.raises(ValueError):
        uuid7(-1)


def test_timestamps_are_utc_with_milliseconds() -> None:
    berlin = timezone(timedelta(hours=1))
    assert (
        format_ts(datetime(2026, 1, 1, 13, 0, 0, 123456, tzinfo=berlin))
        == "2026-01-01T12:00:00.123Z"
    )
    with pytest.raises(ValueError, match="naive"):
        format_ts(datetime(2026, 1, 1))
    assert parse_ts("2026-01-01T12:00:00Z") == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_ts("2026-01-01T12:00:00") == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_ts("yesterday") is None and parse_ts(None) is None


def test_sql_literals_cannot_break_out() -> None:
    assert sql_string_literal("it's") == "'it''s'"
    with pytest.raises(ValueError):
        sql_string_literal("a\0b")
    sql = render_sql("catalog/lake_events", events_glob="/tmp/x'; DROP TABLE y; --/*.parquet")
    assert "'/tmp/x''; DROP TABLE y; --/*.parquet'" in sql
    with pytest.raises(KeyError, match="events_glob"):
        render_sql("catalog/lake_events")
