"""Kafka unreachable mid-run, with a roomy spool, a full spool and a full disk; and slow
consumers. The collector spools or answers 503 within its produce timeout (never hangs,
never a 200 for an event neither acknowledged nor spooled); after the broker returns, every
ledger event lands exactly once.

The embedded broker keeps topics in memory only, so stopping it would lose them: the outage
is a TCP proxy in front of the broker (``tests/proxy.py``) refusing and resetting every
connection, which is what clients see when a broker is down.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.broker import EmbeddedBroker
from pipeline.processes import free_port
from pipeline.settings import Settings
from tests.conftest import wait_until
from tests.proxy import TcpProxy
from tests.reliability.harness import LoadGenerator, Pipeline, account, verify_clean

PRODUCE_TIMEOUT_S = 1.0
#: Slack on top of the produce timeout for an answer on a loaded 2-core box (fsync included).
ANSWER_SLACK_S = 5.0


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, TcpProxy]]:
    """A broker of its own, reachable only through a proxy that can cut the line."""
    proxy_port = free_port()
    broker = EmbeddedBroker(
        port=free_port(), log_path=tmp_path / "tansu.log", advertised_port=proxy_port
    )
    proxy = TcpProxy(proxy_port, ("127.0.0.1", broker.port))
    proxy.restore()
    broker.start()
    yield broker, proxy
    proxy.cut()
    broker.stop()


class ReadinessProbe:
    """Samples ``/readyz`` every 0.2 s and notes which answers it saw when."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                status = httpx.get(self.url, timeout=5).status_code
            except httpx.HTTPError:
                status = 0
            self.seen.append((time.monotonic(), status))
            time.sleep(0.2)

    def between(self, start: float, end: float) -> Counter[int]:
        return Counter(s for t, s in self.seen if start <= t <= end)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: the disk under the spool fills up (ENOSPC) long before the spool's
    own cap. Mounting needs root; without it the test is skipped, saying so."""
    mount = tmp_path / "data" / "spool"
    mount.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full case: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


SHORT, LONG = 8.0, 60.0


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("spool", "outage_s"),
    [
        pytest.param("full", SHORT, id="spool-full-8s"),
        pytest.param("roomy", LONG, id="roomy-60s", marks=pytest.mark.slow),
        pytest.param("full", LONG, id="spool-full-60s", marks=pytest.mark.slow),
        pytest.param("disk-full", SHORT, id="disk-full-8s", marks=pytest.mark.slow),
    ],
)
def test_broker_outage_spools_or_503s_then_every_event_lands(
    proxied_broker: tuple[EmbeddedBroker, TcpProxy],
    make_settings,  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest,
    tmp_path: Path,
    spool: str,
    outage_s: float,
) -> None:
    broker, proxy = proxied_broker
    bootstrap = f"127.0.0.1:{proxy.listen_port}"
    if spool == "disk-full":
        request.getfixturevalue("tiny_disk")
    settings: Settings = make_settings(
        kafka_bootstrap=bootstrap,
        produce_timeout_s=PRODUCE_TIMEOUT_S,
        kafka_connect_timeout_s=3.0,
        spool_max_bytes=64 * 1024 if spool == "full" else 256 * 1024 * 1024,
    )
    rate, before_s, after_s = 200.0, 4.0, 6.0
    total = int(rate * (before_s + outage_s + after_s))
    pipeline = Pipeline(settings, tmp_path / "up.log").start()
    probe = ReadinessProbe(pipeline.base + "/readyz")
    rng = random.Random()
    try:
        load = LoadGenerator(
            pipeline.base + "/v1/batch", total, clients=4, batch=10, rate_eps=rate
        ).start()
        time.sleep(before_s * rng.uniform(0.5, 1.5))  # a random point early in the run
        cut_at = time.monotonic()
        proxy.cut()
        time.sleep(outage_s)
        spooled = sum(p.stat().st_size for p in settings.spool_dir.glob("*.spool"))
        restored_at = time.monotonic()
        proxy.restore()
        load.join(outage_s + 300)
        figures = account(load.ledger, settings, broker.bootstrap, timeout=300)
        wait_until(
            lambda: not list(settings.spool_dir.glob("*.spool")), 60, what="the spool drained"
        )
        ledger = load.ledger
        print(
            f"outage {outage_s:g}s, spool {spool}: {spooled} bytes spooled at its end; "
            f"slowest answer {ledger.slowest_answer_s:.2f}s; readyz during outage "
            f"{dict(probe.between(cut_at + 3, restored_at))}"
        )
        # Never hangs: every answer within the produce timeout plus slack.
        assert ledger.slowest_answer_s < PRODUCE_TIMEOUT_S + ANSWER_SLACK_S, ledger
        assert spooled > 0, "nothing was spooled during the outage"
        during = probe.between(cut_at + 3, restored_at)
        if spool == "roomy":
            assert set(ledger.statuses) <= {200, 429}, ledger.statuses
            # Spooling: every event still answered 200, but readiness says Kafka is down.
            assert set(during) == {503}, during
        else:
            assert ledger.statuses[503] > 0, ledger.statuses  # full: 503, clients retry
            assert during[503] > 0, during  # and readiness says so
        assert probe.seen[-1][1] == 200, "not ready again after the outage"
        assert figures.in_events == figures.accepted
        verify_clean(settings)
    finally:
        probe.stop.set()
        pipeline.stop()


@pytest.mark.timeout(600)
@pytest.mark.slow  # the default run keeps its time for the kill and outage scenarios
@pytest.mark.parametrize(("pauses", "pause_s"), [pytest.param(3, 30.0, id="long")])
def test_slow_consumers_build_lag_and_lose_nothing(
    broker: EmbeddedBroker,
    make_settings,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    pauses: int,
    pause_s: float,
) -> None:
    """The stream worker and the sink frozen (SIGSTOP) for a while, repeatedly, while events
    keep arriving: the collector keeps answering, the consumers catch up, exactly once."""
    settings: Settings = make_settings(kafka_bootstrap=broker.bootstrap)
    pipeline = Pipeline(settings, tmp_path / "up.log").start()
    rate = 300.0
    total = int(rate * pauses * (pause_s + 5))
    try:
        load = LoadGenerator(
            pipeline.base + "/v1/batch", total, clients=4, batch=10, rate_eps=rate
        ).start()
        for _ in range(pauses):
            time.sleep(random.uniform(1, 4))
            frozen = [pipeline.child("worker"), pipeline.child("sink")]
            for p in frozen:
                os.kill(p.pid, signal.SIGSTOP)
            time.sleep(pause_s)
            for p in frozen:
                os.kill(p.pid, signal.SIGCONT)
        load.join(600)
        ledger = load.ledger
        assert set(ledger.statuses) <= {200, 429}, ledger.statuses
        account(ledger, settings, broker.bootstrap, timeout=300)
        verify_clean(settings)
    finally:
        pipeline.stop()
