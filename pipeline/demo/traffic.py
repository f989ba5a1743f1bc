"""Simulated visitors for ``autocap up --demo``: live traffic posted to the collector over
real HTTP, and a ``--days N`` history written as Segment JSONL and run through
``autocap import``.

Journeys come from the pure, seeded ``pipeline.demo.journeys``; this module only paces,
posts and writes them.
"""

from __future__ import annotations

import base64
import random
import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pipeline.backfill.importer import ImportSummary
from pipeline.demo.journeys import history, journey
from pipeline.settings import Settings
from pipeline.timeutil import format_ts, parse_ts, utc_now

__all__ = [
    "backfill",
    "history_path",
    "journey",
    "live_journey",
    "run_traffic",
    "write_history",
]


def _site(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.demo_port}"


def live_journey(rng: random.Random, now: datetime, site: str) -> list[dict[str, Any]]:
    """A journey shifted to end at ``now``: a live batch describes a visit that just
    happened, never one in the future."""
    messages = journey(rng, now, site)
    last = max(parse_ts(m["timestamp"]) or now for m in messages)
    shift = last - now
    for message in messages:
        message["timestamp"] = format_ts((parse_ts(message["timestamp"]) or now) - shift)
    return messages


def run_traffic(
    settings: Settings, rate: float, stop: threading.Event, seed: int | None = None
) -> int:
    """Post about ``rate`` events/s to the collector until ``stop``; returns events accepted."""
    rng = random.Random(seed)  # noqa: S311 - simulated traffic, not secrets
    url = f"http://{settings.collector_host}:{settings.collector_port}/v1/batch"
    auth = base64.b64encode(f"{settings.write_keys[0].key}:".encode()).decode()
    sent = 0
    while not stop.is_set():
        batch = live_journey(rng, utc_now(), _site(settings))
        body = orjson.dumps({"batch": batch, "sentAt": format_ts(utc_now())})
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - our URL
                if resp.status == 200:
                    sent += len(batch)
        except (urllib.error.URLError, OSError):
            pass  # the collector is restarting; the next journey tries again
        stop.wait(len(batch) / max(rate, 0.1))
    return sent


def write_history(
    path: Path, days: int, end: datetime, seed: int | None, visits_per_day: int, site: str
) -> int:
    """Write ``days`` of demo history ending at ``end`` to ``path`` (Segment JSONL); returns
    the number of messages."""
    rng = random.Random(seed)  # noqa: S311 - simulated traffic, not secrets
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as fh:
        for message in history(rng, end, days, visits_per_day, site):
            fh.write(orjson.dumps(message) + b"\n")
            count += 1
    return count


def history_path(demo_dir: Path, days: int, end: datetime) -> tuple[Path, bool]:
    """Where ``days`` of history go, and whether it is already written: a history file kept
    from an earlier run is reused, so a restarted simulator (or a second ``up --demo
    --days N`` on the same data dir) re-imports the same event ids, which import skips."""
    kept = sorted(demo_dir.glob(f"history-{days}d-*.jsonl"))
    if kept:
        return kept[-1], True
    return demo_dir / f"history-{days}d-{end:%Y%m%dT%H%M}.jsonl", False


def backfill(
    settings: Settings, days: int, seed: int | None = None, visits_per_day: int = 60
) -> ImportSummary:
    """Generate ``days`` of history up to now and import it through the pipeline (the path
    ``autocap import`` takes: raw topic, stage 1, sink)."""
    from pipeline.backfill.command import run_import

    end = utc_now() - timedelta(minutes=1)
    path, kept = history_path(settings.data_dir / "demo", days, end)
    if not kept:
        tmp = path.with_suffix(".tmp")
        write_history(tmp, days, end, seed, visits_per_day, _site(settings))
        tmp.replace(path)  # complete or absent: a crash mid-write is not reused
    return run_import(settings, [path])
