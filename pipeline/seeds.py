"""Seeds: stream state computed in batch over the lake, sent to the stream in order.

When a custom property is added or changed, ``autocap backfill-state`` folds each person's
lake history with the same pure function the stream uses (``fold_custom``) and sends one
seed record per person through ``autocap.enriched`` with key = person_id: the person's own
partition, so the seed is ordered with the person's live events.

Exactness. The sink writes the lake from the same topic, so every lake event of the person
came before the seed in the partition and the stream folded it before the seed. The seed
replaces only its named parts of the state, then the stream re-folds, from the profile's
``tail`` (its last ``TAIL`` compact events), the events the seed did not cover: the ones it
folded that the lake did not hold yet when the backfill read it. The seed says how many
events it folded (``events``) and which of the person's latest ones (``covered``), so the
stream proves the result exact: ``events + re-folded == events the profile folded``. A seed
that cannot be exact (the sink lagged by more than the tail) is still applied and counted as
``inexact``; running the backfill again when the sink caught up fixes it.

A seed is generic: ``parts`` maps a part name (``properties.<name>``, or ``cohorts.person``:
the person's whole cohort state, applied by ``pipeline.stream.cohort_stage``) to that part's
fold state and the fingerprint of the definition it was computed with. The stream applies a
part only if it runs the same definition (else the part is ``stale``: restart the worker
with the new definitions first), and only once per seed id (a replayed seed changes
nothing). The cohort fold is idempotent (sets of event ids), so its seed simply re-folds the
whole tail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.cohorts import CohortPlan
from pipeline.definitions import Definitions
from pipeline.profiles import TAIL, ProfileState, fold_custom
from pipeline.properties import PropertyDefinition

__all__ = [
    "COHORT_PART",
    "COVERED",
    "PROPERTY_PART",
    "SeedOutcome",
    "apply_profile_seed",
    "cohort_fingerprint",
    "fingerprint",
    "is_seed",
    "seed_record",
]

#: Lake event ids a seed names as covered: the person's latest, several tails' worth.
COVERED = 4 * TAIL
PROPERTY_PART = "properties."
#: A person's cohort state (every person cohort at once: they share the event history).
COHORT_PART = "cohorts.person"
#: Seeds are JSON objects whose first key is "seed" (orjson keeps insertion order), so the
#: sink tells them from events without decoding.
_PREFIX = b'{"seed":'


def fingerprint(definition: PropertyDefinition) -> str:
    """A short hash of one definition: a seed part applies only under the same one."""
    return hashlib.sha256(repr(definition).encode()).hexdigest()[:16]


def cohort_fingerprint(plan: CohortPlan) -> str:
    """A short hash of the person cohorts: a cohort seed applies only under the same ones."""
    return hashlib.sha256(repr(plan.cohorts).encode()).hexdigest()[:16]


def is_seed(value: bytes | None) -> bool:
    """Whether a record of ``autocap.enriched`` is a seed rather than an event."""
    return value is not None and value.startswith(_PREFIX)


def seed_record(
    subject: str,
    seed_id: str,
    parts: Mapping[str, Mapping[str, Any]],
    events: int,
    covered: Iterable[str],
) -> bytes:
    """The seed's value on the topic; ``parts``: name -> {"fingerprint", "state"}."""
    body = {
        "subject": subject,
        "seed_id": seed_id,
        "parts": dict(parts),
        "events": events,
        "covered": list(covered),
    }
    return orjson.dumps({"seed": body})


@dataclass
class SeedOutcome:
    """What applying one seed did."""

    applied: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    replayed: list[str] = field(default_factory=list)
    refolded: int = 0
    exact: bool = True


def apply_profile_seed(
    state: ProfileState | None, seed: Mapping[str, Any], definitions: Definitions
) -> tuple[ProfileState, SeedOutcome]:
    """Replace the seeded custom properties' fold state and re-fold the tail's events the
    seed did not cover. ``seed`` is the record's ``seed`` object."""
    subject = str(seed["subject"])
    state = state or ProfileState(subject)
    outcome = SeedOutcome()
    by_name = {d.name: d for d in definitions.properties}
    covered = set(seed.get("covered") or ())
    missing = [e for e in state.tail if e.get("event_id") not in covered]
    custom, seeds = dict(state.custom), dict(state.seeds)
    for part, body in (seed.get("parts") or {}).items():
        if part == COHORT_PART:
            # Applied by the cohort stage; the profile remembers the seed id so a replayed
            # seed is not applied twice (its state would undo events folded since).
            if seeds.get(part) == seed["seed_id"]:
                outcome.replayed.append(part)
            else:
                seeds[part] = str(seed["seed_id"])
                outcome.applied.append(part)
            continue
        definition = by_name.get(part.removeprefix(PROPERTY_PART))
        if not part.startswith(PROPERTY_PART) or definition is None:
            outcome.stale.append(part)
            continue
        if body.get("fingerprint") != fingerprint(definition):
            outcome.stale.append(part)
            continue
        if seeds.get(part) == seed["seed_id"]:
            outcome.replayed.append(part)
            continue
        saved = body.get("state")
        for event in missing:
            saved = fold_custom(definition, saved, event, state.last_seen or "")
        if saved is None:
            custom.pop(definition.name, None)
        else:
            custom[definition.name] = saved
        seeds[part] = str(seed["seed_id"])
        outcome.applied.append(part)
    if outcome.applied:
        outcome.refolded = len(missing)
        outcome.exact = int(seed.get("events") or 0) + len(missing) == state.version
    seeded = state.seeded + int(bool(outcome.applied))
    state = ProfileState(**{**state.__dict__, "custom": custom, "seeds": seeds, "seeded": seeded})
    return state, outcome
