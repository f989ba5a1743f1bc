"""``autocap import FILE...``: check the inputs and Kafka, import with a progress bar, and
print the summary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from collectors.http.producer import KafkaEventProducer
from pipeline.backfill.importer import Importer, ImportSummary, existing_event_ids
from pipeline.backfill.sources import Source, open_source
from pipeline.cluster import ensure_topics, running_bootstrap, wait_for_kafka
from pipeline.errors import ConfigError
from pipeline.settings import Settings
from pipeline.timeutil import utc_now

__all__ = ["render_summary", "run_import"]


class _EventsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.fields.get("events", 0) / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} events/s")


def _check_write_key(settings: Settings, write_key: str | None) -> None:
    known = {k.key for k in settings.write_keys}
    if write_key is not None and known and write_key not in known:
        raise ConfigError("--write-key: not one of AUTOCAP_WRITE_KEYS")


def run_import(
    settings: Settings,
    paths: Sequence[Path],
    fmt: str = "auto",
    write_key: str | None = None,
    console: Console | None = None,
) -> ImportSummary:
    """Import ``paths`` into the raw topic; every file is opened before anything is sent."""
    _check_write_key(settings, write_key)
    sources = [open_source(path, fmt) for path in paths]
    bootstrap = running_bootstrap(settings)
    if bootstrap is None:
        raise ConfigError(
            "AUTOCAP_KAFKA_BOOTSTRAP is not set and no `autocap up` runs on this data dir:"
            " import needs the pipeline's Kafka (pass it with --kafka-bootstrap)"
        )
    settings = settings.with_overrides(kafka_bootstrap=bootstrap)
    wait_for_kafka(bootstrap, settings.kafka_connect_timeout_s)
    ensure_topics(settings, bootstrap)
    console = console or Console(stderr=True)
    return asyncio.run(_import(settings, sources, write_key, console))


async def _import(
    settings: Settings, sources: list[Source], write_key: str | None, console: Console
) -> ImportSummary:
    assert settings.kafka_bootstrap is not None
    producer = KafkaEventProducer(settings, settings.kafka_bootstrap)
    await producer.start()
    importer = Importer(
        settings,
        producer,
        utc_now(),
        write_key=write_key,
        known_ids=lambda ids: existing_event_ids(settings.warehouse_path, ids),
    )
    started = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[events]:,} events"),
        _EventsPerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            tasks = {
                id(s): progress.add_task(s.path.name, total=s.total, events=0) for s in sources
            }

            def advance(source: Source) -> None:
                progress.update(
                    tasks[id(source)],
                    completed=source.position(),
                    events=source.read,
                )

            summary = await importer.run(sources, advance)
            for source in sources:  # gzip and blank lines leave the byte count short
                progress.update(tasks[id(source)], completed=source.total)
    finally:
        await producer.stop()
    summary.seconds = time.monotonic() - started
    return summary


def render_summary(summary: ImportSummary, console: Console) -> None:
    """The end-of-import report: counts, refusals by reason, the first refused lines."""
    rejected = sum(summary.rejected.values())
    console.print(
        f"imported: read {summary.read:,}, produced {summary.produced:,}, already imported"
        f" {summary.already_imported:,}, rejected {rejected:,} in {summary.seconds:.1f} s",
        highlight=False,
    )
    if not rejected:
        return
    reasons = Table("reason", "lines", title="rejected by reason")
    for reason, count in summary.rejected.most_common():
        reasons.add_row(reason, f"{count:,}")
    console.print(reasons)
    examples = Table("file:line", "field", "reason", "message", title="first rejected lines")
    for e in summary.examples:
        examples.add_row(f"{e.file}:{e.number}", e.field, e.reason, e.message)
    console.print(examples)
