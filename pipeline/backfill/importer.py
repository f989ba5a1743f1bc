"""``autocap import``: historic messages through the collector's rules onto the raw topic.

Records are produced to ``<prefix>.raw`` keyed by anonymous_id (else user_id), exactly as the
collector produces them, so stage 1 and the sink treat them like live traffic. Refused
messages go to ``<prefix>.dead_letter`` (stage ``import``) and the import goes on.

Idempotent: ``messageId`` becomes ``event_id`` (derived from the content when absent), the
lake keeps one row per event_id, and ids the lake already holds are not produced again (a
re-run after a completed import produces nothing). Records go out in chunks; each chunk is
acknowledged by Kafka (``acks=all``) before the next, so the summary counts only what Kafka
holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from collectors.http.normalize import Limits
from collectors.http.producer import EventProducer, Record
from pipeline.backfill.records import historic_record
from pipeline.backfill.sources import Source
from pipeline.deadletter import dead_letter_record
from pipeline.errors import BrokerUnavailable, InvalidEvent
from pipeline.settings import Settings
from pipeline.sqlfiles import load_sql

__all__ = ["ImportSummary", "Importer", "Rejection", "existing_event_ids"]

log = logging.getLogger(__name__)

#: Records per produce round trip (and per "already in the lake?" look-up).
CHUNK = 5000
#: A chunk Kafka has not acknowledged within this means Kafka is gone.
ACK_TIMEOUT_S = 30.0
#: Refused lines kept with their details for the report (all are counted).
EXAMPLES = 20


@dataclass(frozen=True)
class Rejection:
    """One refused line or row, for the report."""

    file: str
    number: int
    field: str
    reason: str
    message: str


@dataclass
class ImportSummary:
    """What an import did: read, produced, skipped as already imported, refused by reason."""

    read: int = 0
    produced: int = 0
    already_imported: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (``autocap import --format json``)."""
        return {
            "read": self.read,
            "produced": self.produced,
            "already_imported": self.already_imported,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "examples": [e.__dict__ for e in self.examples],
            "seconds": round(self.seconds, 3),
        }


def existing_event_ids(warehouse_path: Path, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the lake already holds; empty when there is no warehouse yet or it
    cannot be read right now (the lake's event_id deduplication still holds then)."""
    if not ids or not warehouse_path.exists():
        return set()
    try:
        con = duckdb.connect(str(warehouse_path), read_only=True)
        try:
            rows = con.execute(load_sql("backfill/existing_event_ids"), {"ids": list(ids)})
            return {str(row[0]) for row in rows.fetchall()}
        finally:
            con.close()
    except duckdb.Error as exc:
        log.warning("cannot check %s for imported events (%s); producing all", warehouse_path, exc)
        return set()


class Importer:
    """Reads sources, normalizes, produces in acknowledged chunks, counts everything."""

    def __init__(
        self,
        settings: Settings,
        producer: EventProducer,
        imported_at: datetime,
        *,
        write_key: str | None = None,
        known_ids: Callable[[Sequence[str]], set[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.imported_at = imported_at
        self.write_key = write_key
        self.limits = Limits.from_settings(settings)
        self.known_ids = known_ids or (lambda ids: set())
        self.summary = ImportSummary()
        self._raw_topic = settings.topic("raw")
        self._dead_topic = settings.topic("dead_letter")
        self._chunk: list[tuple[str, Record]] = []  # (event_id, (key, value))
        self._dead: list[Record] = []

    async def run(
        self, sources: Sequence[Source], progress: Callable[[Source], None] | None = None
    ) -> ImportSummary:
        """Import every source in order; ``progress`` is called after each chunk is sent."""
        for source in sources:
            for item in source.items():
                self.summary.read += 1
                if item.error is not None:
                    self._refuse(source, item.number, item.error, item.raw)
                    continue
                assert item.message is not None
                try:
                    record, value = historic_record(item.message, self.imported_at, self.limits)
                except InvalidEvent as exc:
                    self._refuse(source, item.number, exc, item.raw)
                    continue
                key = str(record["anonymous_id"] or record["user_id"]).encode()
                self._chunk.append((str(record["event_id"]), (key, value)))
                if len(self._chunk) + len(self._dead) >= CHUNK:
                    await self._flush()
                    if progress is not None:
                        progress(source)
            await self._flush()
            if progress is not None:
                progress(source)
        return self.summary

    def _refuse(self, source: Source, number: int, exc: InvalidEvent, raw: bytes) -> None:
        self.summary.rejected[exc.rule] += 1
        where = f"{source.path.name}:{number}"
        if len(self.summary.examples) < EXAMPLES:
            self.summary.examples.append(
                Rejection(str(source.path), number, exc.field, exc.rule, str(exc))
            )
        self._dead.append(
            (
                None,
                dead_letter_record(
                    stage="import",
                    reason=exc.rule,
                    field=exc.field,
                    message=f"{where}: {exc}",
                    payload=raw,
                    received_at=self.imported_at,
                    write_key=self.write_key,
                ),
            )
        )

    async def _flush(self) -> None:
        chunk, self._chunk = self._chunk, []
        dead, self._dead = self._dead, []
        known = self.known_ids([event_id for event_id, _ in chunk])
        fresh = [record for event_id, record in chunk if event_id not in known]
        try:
            await asyncio.wait_for(self._send(fresh, dead), ACK_TIMEOUT_S)
        except (BrokerUnavailable, TimeoutError) as exc:
            raise BrokerUnavailable(
                f"Kafka stopped acknowledging after {self.summary.produced} events were"
                f" imported ({exc or 'timed out'}); run the same import again to finish"
                " (it is idempotent)"
            ) from exc
        self.summary.produced += len(fresh)
        self.summary.already_imported += len(chunk) - len(fresh)

    async def _send(self, records: list[Record], dead: list[Record]) -> None:
        if records:
            await self.producer.send_all(self._raw_topic, records)
        if dead:
            await self.producer.send_all(self._dead_topic, dead)
