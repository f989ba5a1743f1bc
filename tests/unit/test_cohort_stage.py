"""The stream's cohort glue with a dict for the table: replays re-send what they caused,
the timer's states wait in memory for the subject's next input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pipeline.cohorts import cohort_plan, fold_cohorts
from pipeline.definitions import load_definitions
from pipeline.profiles import compact_event
from pipeline.seeds import COHORT_PART, apply_profile_seed, cohort_fingerprint
from pipeline.stream.cohort_stage import CohortStage
from pipeline.timeutil import format_ts

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _stage(tmp_path: Path) -> tuple[CohortStage, dict[str, Any], list[dict[str, Any]], _Clock]:
    path = tmp_path / "definitions.yaml"
    path.write_text("cohorts:\n  - name: c\n    where: {performed: {event: A, within: 1m}}\n")
    table: dict[str, Any] = {}
    sent: list[dict[str, Any]] = []

    async def send(topic: Any, key: bytes | None, value: bytes) -> None:
        sent.append(orjson.loads(value) | {"key": key})

    clock = _Clock()
    plan = cohort_plan(load_definitions(path), "person")
    return CohortStage(table, plan, "topic", send, clock), table, sent, clock


def _event(event_id: str, at: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "event": "A", "timestamp": format_ts(at), "person_id": "p"}


def test_replay_resends_and_timer_waits_for_the_next_input(tmp_path: Path) -> None:
    stage, table, sent, clock = _stage(tmp_path)
    run = asyncio.run
    run(stage.on_input("p", _event("e1", T0), None, "e1"))
    assert [(c["change"], c["event_id"], c["key"]) for c in sent] == [("enter", "e1", b"p")]
    run(stage.on_input("p", _event("e1", T0), None, "e1"))  # replayed after a crash
    assert len(sent) == 2 and sent[1] == sent[0]  # the same change again, nothing new
    clock.now = T0 + timedelta(seconds=30)
    assert run(stage.tick()) == 0  # nothing due yet
    clock.now = T0 + timedelta(minutes=1, milliseconds=1)
    assert run(stage.tick()) == 1
    assert [(c["change"], c["event_id"]) for c in sent[2:]] == [("exit", None)]
    assert table["p"]["last"]["c"]["change"] == "enter"  # only an agent writes the table
    assert run(stage.tick()) == 0  # the pending state says: not due again
    clock.now += timedelta(seconds=1)
    run(stage.on_input("p", _event("e2", T0 - timedelta(hours=1)), None, "e2"))
    assert len(sent) == 3  # an old event: still out, no change
    assert table["p"]["last"]["c"]["change"] == "exit" and not stage.pending


def test_a_cohort_seed_fills_history_and_counts_events_the_lake_lacked(tmp_path: Path) -> None:
    path = tmp_path / "definitions.yaml"
    path.write_text(
        "cohorts:\n  - name: ten\n    where: {performed: {event: A, at_least: 10, within: 1d}}\n"
    )
    definitions = load_definitions(path)
    plan = cohort_plan(definitions, "person")
    table: dict[str, Any] = {}
    sent: list[dict[str, Any]] = []

    async def send(topic: Any, key: bytes | None, value: bytes) -> None:
        sent.append(orjson.loads(value))

    clock = _Clock()
    clock.now = T0 + timedelta(hours=1)
    stage = CohortStage(table, plan, "topic", send, clock)
    events = [_event(f"e{i}", T0 + timedelta(minutes=i)) for i in range(10)]
    # The worker folded all ten before the cohort existed; the lake held only eight when
    # the backfill read it: the seed covers those, the profile's tail has all ten.
    seeded = None
    for event in events[:8]:
        seeded, _ = fold_cohorts(seeded, "p", event, plan)
    assert seeded is not None
    state = {k: v for k, v in seeded.to_json().items() if k not in ("last", "next")}
    body = {"fingerprint": cohort_fingerprint(plan), "state": state}
    tail = [compact_event(e) for e in events]
    assert asyncio.run(stage.apply_seed("p", body, tail, {"person_id": "p"}))
    assert [(c["cohort"], c["change"], c["detail"]) for c in sent] == [
        ("ten", "enter", {"performed A at least 10 times within 1d": 10})
    ]
    assert table["p"]["last"]["ten"]["change"] == "enter"
    # A seed computed for other cohorts is refused (the worker must run them first).
    assert not asyncio.run(stage.apply_seed("p", {**body, "fingerprint": "x"}, tail, {}))
    # The profile remembers the seed: replayed, it is not applied again.
    seed = {"subject": "p", "seed_id": "s1", "parts": {COHORT_PART: body}, "events": 8}
    profile, first = apply_profile_seed(None, seed, definitions)
    _, again = apply_profile_seed(profile, seed, definitions)
    assert first.applied == [COHORT_PART] and again.replayed == [COHORT_PART]


def test_a_forgotten_subject_is_gone_and_the_timer_sends_nothing_for_it(tmp_path: Path) -> None:
    stage, table, sent, clock = _stage(tmp_path)
    run = asyncio.run
    for subject in ("p", "q"):
        run(stage.on_input(subject, _event(f"{subject}1", T0) | {"person_id": subject}, None, None))
    clock.now = T0 + timedelta(minutes=1, milliseconds=1)
    assert run(stage.tick()) == 2 and set(stage.pending) == {"p", "q"}
    stage.forget(["p", "absent"])  # `autocap forget p`; an absent subject is skipped
    assert "p" not in table and "p" not in stage.pending and "q" in table
    clock.now += timedelta(minutes=5)
    sent.clear()
    run(stage.tick())
    run(stage.on_input("q", None, {"person_id": "q"}, None))
    assert all(c["key"] == b"q" for c in sent)
    stage.forget(["p"])  # replayed: nothing left to delete
    assert "p" not in table
