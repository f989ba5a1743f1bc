"""Fuzzing a real collector process for minutes (issue 10): a hypothesis state machine mixes
valid batches (kept in a ledger) with hostile bodies from a corpus and from strategies
(invalid UTF-8, lone surrogates, truncated gzip, deep nesting, wrong types, NUL bytes, bad
keys). Throughout: no 5xx, the process stays up with bounded memory. After: every accepted
id is on the raw topic exactly once, and every dead-letter record carries its reason, stage
and receive time, with the payload cut to the bound.

The default run fuzzes for 20 s; ``pytest -m slow tests/reliability`` runs the 10 minutes.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import psutil
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from bench.collector.stack import collector_process
from bench.hostile.attacks import read_topic, track
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.deadletter import MAX_PAYLOAD_BYTES
from pipeline.processes import free_port
from pipeline.settings import Settings, WriteKey

KEY = "wk_fuzz_soak_000001"
CAP = 256 * 1024
#: RSS growth allowed over the fuzz, after a warm-up (allocator arenas, caches).
MEMORY_GROWTH_MB = 100

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)
_message = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "page", "identify", "group", "alias", "screen", "x"])
        | _json,
        "event": _json,
        "userId": _json,
        "anonymousId": _json,
        "messageId": _json,
        "timestamp": st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", "9999-99-99"]) | _json,
        "properties": _json,
        "context": _json,
        "elements": _json,
    },
)


def _corpus() -> list[bytes]:
    deep = b'{"batch":[{"type":"track","event":"x","anonymousId":"a","properties":'
    deep += b"[" * 10_000 + b"]" * 10_000 + b"}]}"
    valid = orjson.dumps({"batch": [track()]})
    return [
        b"\xff\xfe\xfa not utf-8",
        b'{"batch":[{"type":"track","event":"\\ud800","anonymousId":"a"}]}',  # lone surrogate
        gzip.compress(valid)[:-7],  # truncated gzip
        deep,
        b'{"batch":[{"type":"track","event":"a\x00b","anonymousId":"a\x00"}]}',
        b'{"batch":"not a list"}',
        b'{"batch":[1,2,3]}',
        b"[" * 100_000,
        b"",
        b"null",
        valid[: len(valid) // 2],
        b'{"batch":[' + b"{}," * 2_000 + b"{}]}",
    ]


@dataclass
class Ledger:
    """What the fuzz sent and what the collector answered."""

    accepted: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    last_accepted: str = ""


@dataclass
class Target:
    base: str
    proc: psutil.Process
    bootstrap: str
    settings: Settings
    client: httpx.Client


@pytest.fixture(scope="module")
def target(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    s = Settings(
        kafka_bootstrap=broker.bootstrap,
        data_dir=tmp_path_factory.mktemp("fuzz"),
        topic_prefix="z" + uuid.uuid4().hex[:10],
        collector_port=free_port(),
        write_keys=(WriteKey(KEY),),
        kafka_idempotence=False,
        partitions=1,
        max_body_bytes=CAP,
        rate_limit_key_eps=0.0,
        rate_limit_ip_eps=0.0,
        access_log=False,
        log_level="warning",
    )
    ensure_topics(s, broker.bootstrap)
    with collector_process(s) as proc, httpx.Client(timeout=30) as client:
        yield Target(
            f"http://127.0.0.1:{s.collector_port}",
            psutil.Process(proc.pid),
            broker.bootstrap,
            s,
            client,
        )


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _machine(target: Target, ledger: Ledger) -> type[RuleBasedStateMachine]:
    corpus = _corpus()

    class CollectorFuzz(RuleBasedStateMachine):
        def post(
            self, body: bytes, headers: dict[str, str] | None = None, path: str = "/v1/batch"
        ) -> int:
            resp = target.client.post(
                target.base + path, content=body, headers=headers or _auth(KEY)
            )
            ledger.statuses[resp.status_code] += 1
            assert resp.status_code < 500, (resp.status_code, resp.text, body[:200])
            return resp.status_code

        @rule(count=st.integers(1, 20))
        def valid_batch(self, count: int) -> None:
            ids = [f"fz-{uuid.uuid4().hex}" for _ in range(count)]
            body = orjson.dumps({"batch": [track(i) for i in ids]})
            # A valid batch from a known key is accepted: the ledger relies on it.
            assert self.post(body) == 200
            ledger.accepted.update(ids)
            ledger.last_accepted = ids[-1]

        @rule(messages=st.lists(_message, max_size=5), gzipped=st.booleans())
        def random_messages(self, messages: list[dict[str, Any]], gzipped: bool) -> None:
            # stdlib json: it writes what orjson refuses (integers past 64 bits, Infinity).
            body = json.dumps({"batch": messages}).encode()
            headers = _auth(KEY)
            if gzipped:
                body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
            self.post(body, headers)

        @rule(
            body=st.binary(max_size=2048),
            path=st.sampled_from(["/v1/batch", "/v1/track", "/v1/identify"]),
        )
        def random_bytes(self, body: bytes, path: str) -> None:
            self.post(body, path=path)

        @rule(index=st.integers(0, len(corpus) - 1), gzipped=st.booleans())
        def from_corpus(self, index: int, gzipped: bool) -> None:
            headers = _auth(KEY)
            body = corpus[index]
            if gzipped:
                body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
            self.post(body, headers)

        @rule(key=st.text(max_size=300) | st.sampled_from(["", "\x00", "wk_" + "x" * 5000]))
        def bad_key(self, key: str) -> None:
            raw = key.encode("utf-8", "surrogatepass")
            header = "Basic " + base64.b64encode(raw + b":").decode()
            status = self.post(orjson.dumps({"batch": [track()]}), {"Authorization": header})
            if key != KEY:
                assert status == 401

        @invariant()
        def alive(self) -> None:
            assert target.proc.is_running() and target.proc.status() != psutil.STATUS_ZOMBIE

    return CollectorFuzz


@pytest.mark.parametrize(
    "seconds",
    [20, pytest.param(600, marks=[pytest.mark.slow, pytest.mark.timeout(1200)])],
    ids=["20s", "10min"],
)
def test_fuzzing_a_real_collector(target: Target, seconds: int) -> None:
    ledger = Ledger()
    machine = _machine(target, ledger)
    fast = settings(
        max_examples=20,
        stateful_step_count=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    run_state_machine_as_test(machine, settings=fast)  # warm-up: first allocations
    baseline = target.proc.memory_info().rss
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < seconds:
        run_state_machine_as_test(machine, settings=fast)
        rounds += 1
    growth_mb = (target.proc.memory_info().rss - baseline) / 2**20
    assert growth_mb < MEMORY_GROWTH_MB, growth_mb
    assert target.client.get(target.base + "/healthz").status_code == 200
    assert ledger.statuses[200] and sum(ledger.statuses[s] for s in (400, 401, 413, 415))
    assert not [s for s in ledger.statuses if s >= 500], ledger.statuses

    raw = read_topic(target.bootstrap, target.settings.topic("raw"), ledger.last_accepted, 120)
    seen = Counter(str(r.get("event_id")) for r in raw)
    missing = ledger.accepted - set(seen)
    doubled = [i for i in ledger.accepted if seen[i] > 1]
    assert not missing and not doubled, (len(missing), doubled[:5])
    dead = read_topic(target.bootstrap, target.settings.topic("dead_letter"), "\x00never", 5)
    assert dead, "the corpus holds invalid messages: some must be dead-lettered"
    for record in dead:
        assert record["reason"] and record["stage"] and record["received_at"], record
        assert len(record["payload"]) <= 4 * MAX_PAYLOAD_BYTES // 3 + 4  # base64 at worst
    print(
        f"fuzzed {seconds}s: {rounds} rounds, {sum(ledger.statuses.values())} requests "
        f"{dict(ledger.statuses)}, {len(ledger.accepted)} accepted ids, {len(dead)} dead "
        f"letters, RSS growth {growth_mb:.1f} MB"
    )
