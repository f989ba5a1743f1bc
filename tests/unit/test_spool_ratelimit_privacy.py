"""Pure pieces of the collector: the disk spool, token buckets, IP anonymisation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.http.privacy import anonymize_ip
from collectors.http.ratelimit import RateLimiter
from collectors.http.spool import DiskSpool, SpoolFull


def frame(n: int, topic: str = "t.raw") -> list[tuple[str, bytes | None, bytes]]:
    return [(topic, f"k{n}".encode(), f'{{"n":{n}}}'.encode())]


def drain(spool: DiskSpool) -> list[list[tuple[str, bytes | None, bytes]]]:
    out = []
    while (oldest := spool.oldest()) is not None:
        segment, frames = oldest
        out.extend(frames)
        spool.remove(segment)
    return out


def test_frames_drain_in_order_across_segments_and_restarts(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    for n in range(5):
        spool.append(frame(n))
    reopened = DiskSpool(tmp_path, max_bytes=1 << 20, segment_bytes=100)  # a restart
    reopened.append(frame(5))
    assert drain(reopened) == [frame(n) for n in range(6)]
    assert reopened.is_empty() and reopened.size_bytes == 0
    assert list(tmp_path.iterdir()) == []


def test_null_keys_and_topics_survive(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append([("t.dead_letter", None, b'{"x":1}'), ("t.raw", b"k", b'{"y":"\\u00e9"}')])
    assert drain(spool) == [
        [("t.dead_letter", None, b'{"x":1}'), ("t.raw", b"k", b'{"y":"\\u00e9"}')]
    ]


def test_torn_tail_frame_is_ignored(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append(frame(1))
    spool.append(frame(2))
    segment = next(tmp_path.iterdir())
    segment.write_bytes(segment.read_bytes()[:-3])  # a crash in the middle of an append
    assert drain(DiskSpool(tmp_path, max_bytes=1 << 20)) == [frame(1)]


def test_full_spool_refuses_and_reports_no_room_until_drained(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=80)
    spool.append(frame(1))
    assert spool.has_room()
    with pytest.raises(SpoolFull, match="spool is full"):
        spool.append(frame(2) * 3)
    assert not spool.has_room()
    drain(spool)
    assert spool.has_room()


def test_rate_limiter_refills_and_names_the_wait() -> None:
    limiter = RateLimiter(rate=10, burst_s=1)
    assert limiter.take("k", 10, now=0.0) == 0
    assert limiter.take("k", 1, now=0.0) == pytest.approx(0.1)
    assert limiter.take("other", 10, now=0.0) == 0
    assert limiter.take("k", 5, now=0.5) == 0
    assert RateLimiter.retry_after(0.1) == "1" and RateLimiter.retry_after(2.2) == "3"
    assert RateLimiter(rate=0, burst_s=1).take("k", 10**9, now=0) == 0


def test_oversized_request_is_refused_but_told_a_finite_wait() -> None:
    limiter = RateLimiter(rate=10, burst_s=1)
    wait = limiter.take("k", 50, now=0.0)
    assert 0 < wait <= 1.0


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst_s=1, max_keys=100)
    for i in range(10_000):
        limiter.take(f"ip{i}", 1, now=0.0)
    assert len(limiter._buckets) == 100


@given(st.lists(st.tuples(st.integers(1, 5), st.floats(0, 0.5)), max_size=200))
def test_rate_limiter_never_admits_more_than_rate_plus_burst(
    requests: list[tuple[int, float]],
) -> None:
    limiter = RateLimiter(rate=20, burst_s=1)
    now, admitted = 0.0, 0
    for count, gap in requests:
        now += gap
        if limiter.take("k", count, now) == 0:
            admitted += count
    assert admitted <= 20 * now + 20 + 1e-6


@pytest.mark.parametrize(
    ("ip", "mode", "kept"),
    [
        ("203.0.113.77", "full", "203.0.113.77"),
        ("203.0.113.77", "truncate", "203.0.113.0"),
        ("2001:db8:abcd:12::1", "truncate", "2001:db8:abcd::"),
        ("::ffff:192.0.2.5", "truncate", "192.0.2.0"),
        ("203.0.113.77", "drop", None),
        ("not-an-ip", "full", None),
        (None, "full", None),
    ],
)
def test_ip_modes(ip: str | None, mode: str, kept: str | None) -> None:
    assert anonymize_ip(ip, mode) == kept


def test_a_failed_write_leaves_no_torn_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collectors.http.spool as spool_module

    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append(frame(1))
    real_write = spool_module.os.write

    def half_then_full(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool_module.os, "write", half_then_full)
    with pytest.raises(SpoolFull, match="cannot be written"):
        spool.append(frame(2))
    monkeypatch.setattr(spool_module.os, "write", real_write)
    spool.append(frame(3))
    assert drain(spool) == [frame(1), frame(3)]
