"""``autocap backfill-state``: compute custom properties and person cohorts over the lake's
history and seed the stream with them, so a new or changed property or cohort is filled for
every person at once.

Run it after editing ``definitions.yaml`` and restarting the worker (the worker applies a
seed only for the definition it runs). Each profile key's lake events are folded with
``fold_custom`` (defined events re-tagged with the current definitions) and one seed per
person goes to ``autocap.enriched`` with key = person_id; ``pipeline.seeds`` says why the
result is exact while live events keep flowing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb
from kafka import KafkaProducer
from kafka.errors import KafkaError

from pipeline.batch.stage2 import person_histories
from pipeline.cluster import running_bootstrap, wait_for_kafka
from pipeline.cohorts import CohortPlan, cohort_plan, fold_history
from pipeline.definitions import Definitions, load_definitions
from pipeline.errors import BrokerUnavailable, ConfigError, QueryError
from pipeline.profiles import fold_custom
from pipeline.properties import PropertyDefinition
from pipeline.seeds import (
    COHORT_PART,
    COVERED,
    PROPERTY_PART,
    cohort_fingerprint,
    fingerprint,
    seed_record,
)
from pipeline.settings import Settings
from pipeline.warehouse.query import connect_readonly

__all__ = ["SeedSummary", "chosen_properties", "person_seeds", "run_backfill_state"]


@dataclass
class SeedSummary:
    """What one backfill sent."""

    seed_id: str
    properties: list[str] = field(default_factory=list)
    cohorts: list[str] = field(default_factory=list)
    persons: int = 0
    events: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def chosen_properties(
    definitions: Definitions, names: list[str] | None
) -> tuple[PropertyDefinition, ...]:
    """The properties to seed: the named ones, or every one with fold state (a ``case`` is
    computed from the others when the profile is emitted, so it needs none)."""
    stateful = {d.name: d for d in definitions.properties if d.kind != "case"}
    if not names:
        return tuple(stateful.values())
    unknown = [n for n in names if n not in stateful]
    if unknown:
        known = ", ".join(stateful) or "none"
        raise ConfigError(f"backfill-state: no stateful property {unknown[0]!r} (defined: {known})")
    return tuple(stateful[n] for n in names)


def person_seeds(
    con: duckdb.DuckDBPyConnection,
    definitions: Definitions,
    chosen: tuple[PropertyDefinition, ...],
    seed_id: str,
    cohorts: CohortPlan,
) -> Any:
    """Yield ``(person_id, seed value, events folded)`` for every profile key in the lake;
    with person ``cohorts``, each seed also carries the person's cohort state."""
    for history in person_histories(con, definitions):
        events = history.events
        last_seen = max(e["timestamp"] for e in events)
        parts: dict[str, dict[str, Any]] = {}
        for definition in chosen:
            saved: Any = None
            for event in events:
                saved = fold_custom(definition, saved, event, last_seen)
            parts[PROPERTY_PART + definition.name] = {
                "fingerprint": fingerprint(definition),
                "state": saved,
            }
        if cohorts.cohorts:
            # Arrival order does not matter: the fold keeps the same state in any order.
            state = fold_history(None, history.person_id, events, cohorts)
            kept = {k: v for k, v in state.to_json().items() if k not in ("last", "next")}
            parts[COHORT_PART] = {"fingerprint": cohort_fingerprint(cohorts), "state": kept}
        covered = [e["event_id"] for e in events[-COVERED:]]
        value = seed_record(history.person_id, seed_id, parts, len(events), covered)
        yield history.person_id, value, len(events)


def run_backfill_state(settings: Settings, names: list[str] | None) -> SeedSummary:
    """Seed the stream's profiles with ``names`` (default: every stateful property)."""
    definitions = load_definitions(settings.definitions_path)
    chosen = chosen_properties(definitions, names)
    cohorts = cohort_plan(definitions, "person")
    summary = SeedSummary(
        uuid.uuid4().hex, [d.name for d in chosen], [c.name for c in cohorts.cohorts]
    )
    if not chosen and not cohorts.cohorts:
        return summary
    bootstrap = running_bootstrap(settings)
    if bootstrap is None:
        raise ConfigError(
            "AUTOCAP_KAFKA_BOOTSTRAP is not set and no `autocap up` runs on this data dir:"
            " backfill-state needs the pipeline's Kafka (pass it with --kafka-bootstrap)"
        )
    wait_for_kafka(bootstrap, settings.kafka_connect_timeout_s)
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    except KafkaError as exc:
        raise BrokerUnavailable(f"backfill-state: cannot reach Kafka ({exc})") from None
    con = connect_readonly(settings.warehouse_path)
    try:
        for person, value, events in person_seeds(
            con, definitions, chosen, summary.seed_id, cohorts
        ):
            producer.send(settings.topic("enriched"), key=person.encode(), value=value)
            summary.persons += 1
            summary.events += events
        producer.flush()
    except duckdb.Error as exc:
        raise QueryError(f"backfill-state: {str(exc).splitlines()[0]}") from None
    except KafkaError as exc:
        raise BrokerUnavailable(f"backfill-state: Kafka refused a seed ({exc})") from None
    finally:
        con.close()
        producer.close()
    return summary
