"""The stream's cohort glue with a dict for the table: replays re-send what they caused,
the timer's states wait in memory for the subject's next input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pipeline.cohorts import cohort_plan
from pipeline.definitions import load_definitions
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
