"""Cohort membership in the stream: one changelog-backed table per subject kind, the pure
rules of ``pipeline.cohorts``, and a timer for time-based flips.

Changes are sent before the state that remembers them is saved: a crash in between sends
them again (the ``cohort_history`` view collapses a repeated change). A replayed input
changes no state; the changes it caused are sent again, in case the crash came before they
left.

Faust lets only an agent, while it handles a record, write a table (the record names the
changelog partition), so the timer keeps the states it advanced in memory (``pending``) and
the subject's next input writes them back. A restarted worker has lost them and sends those
timer changes once more: harmless, the view keeps the first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from pipeline.cohorts import CohortPlan, CohortState, advance, fold_cohorts, with_record
from pipeline.seeds import cohort_fingerprint
from pipeline.timeutil import format_ts, utc_now

__all__ = ["CohortStage"]

Send = Callable[[Any, bytes | None, bytes], Awaitable[None]]


class CohortStage:
    """Folds inputs into one subject kind's cohort table and sends enter/exit changes."""

    def __init__(
        self,
        table: Any,
        plan: CohortPlan,
        topic: Any,
        send: Send,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.table = table
        self.plan = plan
        self.topic = topic
        self.send = send
        self.clock = clock
        #: subject -> state advanced by the timer, not yet in the table.
        self.pending: dict[str, dict[str, Any]] = {}

    async def on_input(
        self,
        subject: str,
        item: Mapping[str, Any] | None,
        record: Mapping[str, Any] | None,
        event_id: str | None,
    ) -> None:
        """Fold an event or fact (``item``) and/or the subject's record, then evaluate."""
        if not self.plan.cohorts:
            return
        stored = self.table.get(subject)
        saved = self.pending.pop(subject, None) or stored
        state = CohortState.from_json(saved) if saved else None
        changed = False
        if item is not None:
            state, folded = fold_cohorts(state, subject, item, self.plan)
            changed |= folded
        if record is not None:
            state, snapped = with_record(state, subject, record, self.plan)
            changed |= snapped
        if state is None:
            return
        resent = []
        if not changed and event_id is not None:
            resent = [c for c in state.last.values() if c["event_id"] == event_id]
        state, changes = advance(state, self.plan, self.clock(), event_id)
        await self._emit(subject, [*resent, *changes])
        if state.to_json() != stored:
            self.table[subject] = state.to_json()

    async def apply_seed(
        self,
        subject: str,
        body: Mapping[str, Any],
        tail: Sequence[Mapping[str, Any]],
        record: Mapping[str, Any],
    ) -> bool:
        """Replace the subject's cohort history with a seed computed over the lake
        (``pipeline.batch.seed_state``), re-fold the profile's recent events the lake may
        not have held yet (the fold is idempotent, so covered ones change nothing), and send
        the memberships that history changes. False when the seed was computed for other
        cohorts than this worker runs (stale)."""
        if not self.plan.cohorts or body.get("fingerprint") != cohort_fingerprint(self.plan):
            return False
        stored = self.pending.pop(subject, None) or self.table.get(subject) or {}
        seeded = {**body["state"], "subject_id": subject, "kind": self.plan.of}
        # What was announced stays: advance() sends only what the history changes.
        state = CohortState.from_json({**seeded, "last": stored.get("last", {}), "next": None})
        for event in tail:
            state, _ = fold_cohorts(state, subject, event, self.plan)
        state, _ = with_record(state, subject, record, self.plan)
        state, changes = advance(state, self.plan, self.clock(), None)
        await self._emit(subject, changes)
        self.table[subject] = state.to_json()
        return True

    def forget(self, subjects: list[str]) -> None:
        """Drop these subjects' cohort state, saved and timer-advanced (``autocap forget``):
        the timer then has nothing of them to evaluate, so it sends nothing more."""
        for subject in subjects:
            self.pending.pop(subject, None)
            if subject in self.table:
                del self.table[subject]

    async def tick(self) -> int:
        """Re-evaluate the subjects whose next possible flip has passed; returns how many."""
        if not self.plan.cohorts:
            return 0
        now = self.clock()
        due = format_ts(now)  # one ISO spelling: strings compare as times
        count = 0
        for subject, stored in list(self.table.items()):
            saved = self.pending.get(subject, stored)
            if not saved.get("next") or saved["next"] > due:
                continue
            state, changes = advance(CohortState.from_json(saved), self.plan, now, None)
            await self._emit(subject, changes)
            self.pending[subject] = state.to_json()
            count += 1
        return count

    async def _emit(self, subject: str, changes: list[dict[str, Any]]) -> None:
        for change in changes:
            await self.send(self.topic, subject.encode(), orjson.dumps(change))
