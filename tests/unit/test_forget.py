"""The pure parts of `autocap forget`: which rows match a person, the Parquet rewrite, the
forget list's reload, and the id checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import ForgetError
from pipeline.forget.forgetlist import ForgetList
from pipeline.forget.keys import PersonKeys, check_id
from pipeline.forget.purge import purge_file, purge_until_clean

KEYS = PersonKeys(
    "user-1",
    {
        "person_id": frozenset({"p-1", "p-anon"}),
        "anonymous_id": frozenset({"a-1"}),
        "user_id": frozenset({"user-1"}),
        "event_id": frozenset({"e-1", "e-2"}),
    },
)


def _write(path: Path, rows: dict[str, list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)
    return path


def test_purge_removes_rows_matching_any_id_column_and_keeps_the_rest(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "lake" / "events" / "f1.parquet",
        {
            "event_id": ["e-1", "e-9", "e-8", "e-7", "e-6"],
            "anonymous_id": ["a-1", "a-2", None, "a-3", "a-4"],
            "user_id": [None, None, "user-1", None, None],
            "person_id": ["p-1", "p-2", "p-x", "p-anon", "p-4"],
            "previous_id": [None, None, None, None, "a-1"],
        },
    )
    assert purge_file(path, KEYS) == 4
    assert pq.read_table(path).to_pydict()["event_id"] == ["e-9"]
    assert purge_file(path, KEYS) == 0  # nothing left: the file is not rewritten again
    assert not list(path.parent.glob("*.tmp"))


def test_event_ids_only_match_event_id_columns(tmp_path: Path) -> None:
    # A tags table keyed by event id: its rows go; an anonymous id equal to some event id
    # of theirs is a different thing and stays.
    path = _write(
        tmp_path / "published" / "tags" / "t.parquet",
        {"event_id": ["e-2", "e-5"], "anonymous_id": ["z", "e-1"]},
    )
    assert purge_file(path, KEYS) == 1
    assert pq.read_table(path).to_pydict() == {"event_id": ["e-5"], "anonymous_id": ["e-1"]}


def test_the_asked_id_matches_even_when_nothing_resolved(tmp_path: Path) -> None:
    path = _write(tmp_path / "lake" / "sessions" / "s.parquet", {"anonymous_id": ["q", "r"]})
    assert purge_file(path, PersonKeys("q")) == 1


def test_files_without_id_columns_are_left_alone(tmp_path: Path) -> None:
    path = _write(tmp_path / "lake" / "other" / "o.parquet", {"amount": [1, 2]})
    before = path.stat().st_mtime_ns
    assert purge_file(path, KEYS) == 0
    assert path.stat().st_mtime_ns == before


def test_purge_until_clean_walks_every_table_and_ends_on_a_clean_pass(tmp_path: Path) -> None:
    _write(tmp_path / "lake" / "events" / "a.parquet", {"anonymous_id": ["a-1", "b"]})
    _write(tmp_path / "published" / "tags" / "b.parquet", {"event_id": ["e-1", "e-3"]})
    _write(tmp_path / "lake" / "events" / "_schema.parquet", {"anonymous_id": ["a-1"]})
    result = purge_until_clean(tmp_path, KEYS, settle_s=0.01)
    assert (result.rows_removed, result.files_rewritten, result.passes) == (2, 2, 2)
    assert result.clean


def test_forget_list_is_reloaded_when_another_process_adds_to_it(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "forget" / "forgotten.json"
    reader = ForgetList(path, clock=lambda: now[0])
    assert not reader.holds({"anonymousId": "a-1"})
    ForgetList(path).add(["a-1", "42"])
    assert not reader.holds({"anonymousId": "a-1"})  # checked at most once a second
    now[0] = 1.5
    assert reader.holds({"anonymousId": "a-1"})
    assert reader.holds({"anonymousId": "other", "userId": 42})  # ids compared as text
    assert not reader.holds({"anonymousId": "a-2", "userId": None})
    ForgetList(path).add(["b"])
    assert len(ForgetList(path)) == 3


@pytest.mark.parametrize(
    ("bad", "says"),
    [("", "empty"), ("   ", "empty"), ("x" * 513, "longer than 512"), ("a\x00b", "NUL")],
)
def test_bad_ids_are_refused_naming_the_problem(bad: str, says: str) -> None:
    with pytest.raises(ForgetError, match=says):
        check_id(bad)


def test_collector_drops_and_counts_events_of_forgotten_ids(tmp_path: Path) -> None:
    from pipeline.forget.forgetlist import forget_list_path
    from tests.unit.test_collector_app import EVENT, RecordingProducer, auth, batch, build

    ForgetList(forget_list_path(tmp_path)).add(["anon-gone", "user-gone"])
    producer = RecordingProducer()
    with build(tmp_path, producer) as client:
        gone = [
            EVENT | {"anonymousId": "anon-gone", "messageId": "g1"},
            EVENT | {"anonymousId": "someone", "userId": "user-gone", "messageId": "g2"},
            {"type": "track", "anonymousId": "anon-gone"},  # invalid too: not even dead-lettered
        ]
        resp = client.post("/v1/batch", content=batch(EVENT, *gone), headers=auth())
        assert resp.status_code == 200 and resp.json() == {"success": True}
        assert [v["event_id"] for v in producer.values("u.raw")] == ["m1"]
        assert "u.dead_letter" not in producer.sent
        assert "autocap_collector_events_forgotten_total 3.0" in client.get("/metrics").text
