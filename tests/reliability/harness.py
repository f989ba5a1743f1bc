"""The reliability harness: a load generator with a ledger, and the accounting every fault
scenario ends with.

The load generator behaves like the snippet: every event gets a UUIDv7 ``messageId`` when it
is created, and a batch answered anything but 2xx (or not answered at all: the collector was
killed mid-request) is sent again with the same ids until it is answered 200, or refused
for good with a 4xx other than 429. A small share of events is invalid on purpose, so the
dead-letter path is part of every count.

The accounting: sent = accepted + dead-lettered + rejected; every accepted id is in
``events`` exactly once; ``autocap verify`` finds the stream equal to its batch recomputation.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import psutil
import pytest
from kafka import KafkaConsumer

from pipeline.health import LagReader, group_topics
from pipeline.ids import uuid7
from pipeline.settings import Settings
from tests.conftest import WRITE_KEY, autocap, child_env, wait_until

__all__ = ["Accounting", "Ledger", "LoadGenerator", "Pipeline", "account", "dead_letter_ids"]

#: Every this many events one is invalid (a ``track`` without ``event``): dead-lettered.
INVALID_EVERY = 97


@dataclass
class Ledger:
    """What the clients know: every id sent, and how each ended."""

    sent: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)  # answered 200, valid
    invalid: set[str] = field(default_factory=set)  # answered 200, invalid on purpose
    rejected: set[str] = field(default_factory=set)  # refused for good (4xx)
    statuses: Counter[int | str] = field(default_factory=Counter)
    retries: int = 0
    slowest_answer_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class LoadGenerator:
    """``clients`` threads posting batches of ``batch`` events until ``total`` are answered."""

    def __init__(
        self,
        url: str,
        total: int,
        *,
        clients: int = 4,
        batch: int = 20,
        rate_eps: float | None = None,
        timeout_s: float = 30.0,
        anonymous_ids: int = 50,
    ) -> None:
        self.url = url
        self.total = total
        self.clients = clients
        self.batch = batch
        self.rate_eps = rate_eps
        self.timeout_s = timeout_s
        self.anonymous_ids = anonymous_ids
        self.ledger = Ledger()
        self.stop = threading.Event()
        self._made = 0
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(clients)
        ]
        self._started = 0.0

    @property
    def answered(self) -> int:
        """Events whose batch got its final answer."""
        ledger = self.ledger
        return len(ledger.accepted) + len(ledger.invalid) + len(ledger.rejected)

    def start(self) -> LoadGenerator:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float) -> None:
        """Wait for every event to be answered; fail loudly if that takes too long."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            self.stop.set()
            raise AssertionError(f"load not answered within {timeout}s: {self.ledger.statuses}")

    def _next_batch(self) -> list[dict[str, Any]] | None:
        with self.ledger.lock:
            if self._made >= self.total:
                return None
            first, self._made = self._made, min(self.total, self._made + self.batch)
            count = self._made - first
        if self.rate_eps:  # pace to the target rate (open loop per client)
            due = self._started + first / self.rate_eps
            time.sleep(max(0.0, due - time.monotonic()))
        events = []
        for n in range(first, first + count):
            event: dict[str, Any] = {
                "type": "track",
                "event": "Reliability Tick",
                "messageId": uuid7(),
                "anonymousId": f"rel-anon-{n % self.anonymous_ids}",
                "properties": {"n": n},
            }
            if n % INVALID_EVERY == INVALID_EVERY - 1:
                del event["event"]  # a track without a name: dead-lettered, still a 200
            events.append(event)
        return events

    def _run(self, _client: int) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self.stop.is_set():
                events = self._next_batch()
                if events is None:
                    return
                self._send_until_answered(client, events)

    def _send_until_answered(self, client: httpx.Client, events: list[dict[str, Any]]) -> None:
        ledger = self.ledger
        ids = [e["messageId"] for e in events]
        with ledger.lock:
            ledger.sent.update(ids)
        body = orjson.dumps({"batch": events})
        backoff = 0.05
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                resp = client.post(
                    self.url,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    auth=(WRITE_KEY, ""),
                )
                status: int | str = resp.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            took = time.monotonic() - started
            with ledger.lock:
                ledger.statuses[status] += 1
                ledger.slowest_answer_s = max(ledger.slowest_answer_s, took)
                if status == 200:
                    for event in events:
                        kept = ledger.accepted if "event" in event else ledger.invalid
                        kept.add(event["messageId"])
                    return
                if isinstance(status, int) and 400 <= status < 500 and status != 429:
                    ledger.rejected.update(ids)
                    return
                ledger.retries += 1
            time.sleep(backoff)  # the snippet backs off too
            backoff = min(backoff * 2, 1.0)


class Pipeline:
    """``autocap up`` against the session's broker (a restart keeps Kafka's data), its
    output collected in the background."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log_path = log
        self.proc: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.collector_port}"

    def start(self, timeout: float = 90) -> Pipeline:
        log = self.log_path.open("a")
        self.proc = autocap(
            "up", env=child_env(self.settings), stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(
            lambda: "autocap is up" in self.output() or self.proc.poll() is not None,  # type: ignore[union-attr]
            timeout,
            what="`autocap up` to come up",
        )
        assert self.proc.poll() is None, self.output()[-3000:]
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def child(self, role: str) -> psutil.Process:
        """The running child process of ``role`` (waits for the supervisor to restart it)."""
        assert self.proc is not None

        def find() -> psutil.Process | None:
            for p in psutil.Process(self.proc.pid).children(recursive=True):  # type: ignore[union-attr]
                try:
                    if f"pipeline {role}" in " ".join(p.cmdline()):
                        return p
                except psutil.NoSuchProcess:
                    continue
            return None

        found: psutil.Process = wait_until(find, 30, what=f"a running {role}")
        return found

    def kill_whole(self) -> None:
        """kill -9 ``autocap up`` and every process it started, all at once."""
        assert self.proc is not None
        family = psutil.Process(self.proc.pid).children(recursive=True)
        for p in [psutil.Process(self.proc.pid), *family]:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        self.proc.wait(10)
        psutil.wait_procs(family, timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill_whole()


def dead_letter_ids(settings: Settings, bootstrap: str) -> set[str]:
    """The ``messageId`` of every dead-lettered event that carries one."""
    consumer = KafkaConsumer(
        settings.topic("dead_letter"),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    ids: set[str] = set()
    for record in consumer:
        letter = orjson.loads(record.value)
        try:
            payload = orjson.loads(letter["payload"])
        except orjson.JSONDecodeError:
            continue
        if isinstance(payload, dict) and isinstance(payload.get("messageId"), str):
            ids.add(payload["messageId"])
    consumer.close()
    return ids


@dataclass(frozen=True)
class Accounting:
    """The figures a scenario reports."""

    sent: int
    accepted: int
    dead_lettered: int
    rejected: int
    in_events: int
    duplicates: int
    lake_copies: int

    def line(self) -> str:
        return (
            f"sent={self.sent} accepted={self.accepted} dead_lettered={self.dead_lettered} "
            f"rejected={self.rejected} in_events={self.in_events} duplicates={self.duplicates} "
            f"lake_copies={self.lake_copies}"
        )


def _events_counts(warehouse: Path, ids: set[str]) -> tuple[int, int, int]:
    """(distinct ledger ids in ``events``, rows in ``events``, rows in the raw lake)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("CREATE TEMP TABLE ledger(event_id VARCHAR)")
        con.executemany("INSERT INTO ledger VALUES (?)", [(i,) for i in ids])
        row = con.execute(
            "SELECT count(DISTINCT e.event_id), count(*) FROM events e JOIN ledger USING (event_id)"
        ).fetchone()
        raw = con.execute(
            "SELECT count(*) FROM lake_events_raw r JOIN ledger USING (event_id)"
        ).fetchone()
    finally:
        con.close()
    assert row is not None and raw is not None
    return int(row[0]), int(row[1]), int(raw[0])


def _lags(settings: Settings, bootstrap: str) -> str:
    """Where the missing events wait: every partition with lag, per consumer group."""
    reader = LagReader(bootstrap, timeout_s=10)
    try:
        lags = [lag for lag in reader.read(group_topics(settings)) if lag.lag]
    except Exception as exc:  # a diagnostic: never hide the timeout behind its own error
        return f"lag unreadable ({exc!r})"
    finally:
        reader.close()
    return "lag: " + (
        ", ".join(
            f"{x.group} {x.topic}[{x.partition}] {x.lag} (committed {x.committed})" for x in lags
        )
        or "none"
    )


def account(
    ledger: Ledger,
    settings: Settings,
    bootstrap: str,
    *,
    timeout: float = 120,
    progress: Callable[[str], None] = print,
) -> Accounting:
    """Wait for every accepted event to land, then check the accounting; returns figures."""
    assert not (ledger.accepted & ledger.invalid)
    answered = ledger.accepted | ledger.invalid | ledger.rejected
    assert ledger.sent == answered, f"{len(ledger.sent - answered)} events never answered"

    def in_events() -> int | None:
        if not settings.warehouse_path.exists():
            return None
        try:
            return _events_counts(settings.warehouse_path, ledger.accepted)[0]
        except duckdb.Error:  # the catalog is replaced atomically; a view may be missing
            return None

    deadline = time.monotonic() + timeout
    while (found := in_events()) != len(ledger.accepted):
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout}s waiting for every accepted event in `events`:"
                f" {found} of {len(ledger.accepted)} there; {_lags(settings, bootstrap)}"
            )
        time.sleep(1.0)
    distinct, rows, copies = _events_counts(settings.warehouse_path, ledger.accepted)
    letters = wait_until(
        lambda: (d := dead_letter_ids(settings, bootstrap)) >= ledger.invalid and d,
        60,
        interval=1.0,
        what="every invalid event in the dead-letter topic",
    )
    result = Accounting(
        sent=len(ledger.sent),
        accepted=len(ledger.accepted),
        dead_lettered=len(letters & ledger.sent),
        rejected=len(ledger.rejected),
        in_events=distinct,
        duplicates=rows - distinct,
        lake_copies=copies,
    )
    progress(f"accounting: {result.line()}; statuses {dict(ledger.statuses)}")
    assert result.sent == result.accepted + result.dead_lettered + result.rejected, result
    assert result.in_events == result.accepted and result.duplicates == 0, result
    assert not (letters & ledger.accepted), "an accepted event was dead-lettered"
    return result


def verify_clean(settings: Settings) -> str:
    """Run ``autocap verify``; fail unless the stream equals the batch recomputation."""
    done = autocap(
        "verify",
        "--format",
        "json",
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = done.communicate(timeout=180)
    assert done.returncode == 0, f"autocap verify failed:\n{out[-3000:]}\n{err[-3000:]}"
    return out
