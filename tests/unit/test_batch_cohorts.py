"""The batch cohort path's vectorized time formatting spells every time as ``format_ts``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from pipeline.batch.cohorts import format_times
from pipeline.timeutil import format_ts

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Milliseconds since the epoch at the edges: around it (before it too), a leap day, a
#: year under 1000 (zero-padded), the first and last instants Python can hold.
_EDGES = [
    0,
    1,
    999,
    -1,
    -999,
    951_782_400_000,  # 2000-02-29
    1_767_225_600_123,
    -31_536_000_000_000,  # year 970
    -62_135_596_800_000,  # 0001-01-01
    253_402_300_799_999,  # 9999-12-31T23:59:59.999
]


@pytest.mark.parametrize("unit,tz", [("ms", "UTC"), ("us", "Etc/UTC"), ("us", "Asia/Kolkata")])
def test_format_times_spells_times_as_format_ts(unit: str, tz: str) -> None:
    # DuckDB hands TIMESTAMPTZ over as microseconds in the session's zone: any zone works.
    column = pa.array(_EDGES, pa.timestamp("ms", tz="UTC")).cast(pa.timestamp(unit, tz=tz))
    expected = [format_ts(_EPOCH + timedelta(milliseconds=ms)) for ms in _EDGES]
    assert format_times(column) == expected


def test_sub_millisecond_times_are_formatted_one_by_one() -> None:
    column = pa.array([1_500, -1_500], pa.timestamp("us", tz="UTC"))  # 1.5 ms, -1.5 ms
    moments = column.to_pylist()
    assert format_times(column) == [format_ts(m) for m in moments]
    assert format_times(column) == ["1970-01-01T00:00:00.001Z", "1969-12-31T23:59:59.998Z"]
